# OSDPM ablation row 2 on RSITMD: CLIP + DAPN (no OSFCM). The shipped OSFCM
# is a training loss only, so this differs from osdpm_rsitmd.py in training,
# not in the test-time network.
_base_ = ['../osdpm_rsitmd.py']
model = dict(heads=[])
