# OSDPM ablation row 2 on RSICD: CLIP + DAPN (no OSFCM). The shipped OSFCM
# is a training loss only, so this differs from osdpm_rsicd.py in training,
# not in the test-time network.
_base_ = ['../osdpm_rsicd.py']
model = dict(heads=[])
