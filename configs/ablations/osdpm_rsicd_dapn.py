# OSDPM ablation row 2 on RSICD: CLIP + DAPN (no OSFCM).
_base_ = ['../osdpm_rsicd.py']
model = dict(heads=[])
