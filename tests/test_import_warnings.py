"""Importing the plug-in prints no stack noise."""
import subprocess
import sys


def test_import_does_not_print_the_mmcv_lite_ops_warning():
    code = 'import rsitr_mm, mmpretrain.models, mmcv.cnn.bricks.transformer'
    out = subprocess.run([sys.executable, '-W', 'default', '-c', code],
                         capture_output=True, text=True, check=True)
    assert 'MultiScaleDeformableAttention' not in out.stderr


def test_other_warnings_are_not_silenced():
    import warnings

    import rsitr_mm  # noqa: F401
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('default')
        warnings.warn('some other warning', UserWarning)
    assert [str(w.message) for w in caught] == ['some other warning']
