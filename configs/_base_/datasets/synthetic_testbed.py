# The synthetic testbed's target domain (rsitr_mm.datasets.synthetic,
# profile "testbed"): 128 px aerial scenes, 10 scene classes, 1000 train /
# 200 val / 1000 test images with 5 captions each. Generate it (and the
# disjoint pretraining domain) with
#   python tools/dataset_converters/generate_synthetic.py data/testbed \
#       --profile testbed
# which writes a cache folder data/testbed/v<version>-<hash>/;
# tools/analysis_tools/run_ablation.py links it to data/testbed/target.
_base_ = ['./synthetic_demo.py']
data_root = 'data/testbed/target'

train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(batch_size=128, dataset=dict(data_root=data_root))
test_dataloader = dict(batch_size=128, dataset=dict(data_root=data_root))
