"""``posezoo push DIR REPO_ID``: upload a folder written by posezoo.save to the Hugging Face Hub."""
from __future__ import annotations

import argparse

NAME = "push"
HELP = "upload a saved model folder (model.safetensors + config.json) with a generated model card to the Hub"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", help="a folder written by posezoo.save")
    parser.add_argument("repo_id", help="target repo, org/name")
    parser.add_argument("--revision", help="branch to commit to (created from the default branch if missing)")
    parser.add_argument("--private", action="store_true", help="create the repo private")
    parser.add_argument("--message", default="Upload posezoo model", help="commit message")
    parser.add_argument("--card", help="model card template (Jinja markdown; default model_cards/default.md)")
    parser.add_argument("--results", help="results JSON of tools/test.py for the card's metrics "
                                          "(default: FOLDER/results.json if present)")
    parser.add_argument("--overwrite-card", action="store_true", help="replace a README.md already on the Hub")
    parser.add_argument("--endpoint", help="Hub endpoint (default: HF_ENDPOINT or huggingface.co)")
    parser.add_argument("--export", metavar="OUT", help="only write the upload folder to OUT; no network")


def run(args: argparse.Namespace) -> int:
    from posezoo.hub import export_folder, push_to_hub

    if args.export:
        out = export_folder(args.folder, args.export, repo_id=args.repo_id, card=args.card, results=args.results)
        print(f"wrote {', '.join(sorted(p.name for p in out.iterdir()))} to {out}")
        return 0
    info = push_to_hub(args.folder, args.repo_id, revision=args.revision, private=args.private,
                       commit_message=args.message, card=args.card, endpoint=args.endpoint,
                       overwrite_card=args.overwrite_card, results=args.results)
    print(f"pushed {args.folder} to {args.repo_id}: {info.commit_url}")
    return 0
