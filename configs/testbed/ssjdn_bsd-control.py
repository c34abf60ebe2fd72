# SSJDN testbed ablation, BSD control: the same layer features through the
# same lateral convs and the same zero-initialised fusion, but each clue is
# the plain average of its scale (decouple=False: no salience extraction,
# no suppression). BSD vs this control is what salience decoupling adds;
# this control vs w/o BSD is what the extra layers through a new branch add.
_base_ = ['./ssjdn_full.py']
model = dict(image_neck=dict(decouple=False))
