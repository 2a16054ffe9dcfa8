"""Looking inside a trained model: Grad-CAM heat-maps and feature maps."""

from imgclf.explain.feature_maps import feature_maps, filter_tiles
from imgclf.explain.gradcam import explain_files, find_last_conv_layer, gradcam

__all__ = ["explain_files", "feature_maps", "filter_tiles", "find_last_conv_layer", "gradcam"]
