# OSDPM testbed ablation: CLIP start + DAPN, no OSFCM.
_base_ = ['./osdpm_full.py']
model = dict(heads=[])
