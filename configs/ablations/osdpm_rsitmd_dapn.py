# OSDPM ablation row 2 on RSITMD: CLIP + DAPN (no OSFCM).
_base_ = ['../osdpm_rsitmd.py']
model = dict(heads=[])
