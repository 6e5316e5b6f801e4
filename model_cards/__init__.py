"""Model card templates (Jinja markdown) for posezoo.cards. Installed as ``posezoo._model_cards``."""
