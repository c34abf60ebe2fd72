# SSJDN testbed ablation: without the label semantic head (LSD).
_base_ = ['./ssjdn_full.py']
model = dict(heads=[])
