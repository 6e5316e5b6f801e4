# VideoPose3D's TCN (receptive field 27) under the same small CPU recipe as dstformer-lift-small:
# same data, losses, schedule and iterations, a similar parameter count (channels 176: 277k vs
# 280k). The TCN takes x, y only (input_channels=2).
_base_ = ["./dstformer-lift-small.py"]
model = dict(model=dict(_delete_=True, name="tcn-27f-lift", channels=176), input_channels=2)
