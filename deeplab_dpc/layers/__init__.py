"""Keras layers of the DeepLab head: the DPC, ASPP, the decoder and their ops."""
from deeplab_dpc.layers.aspp import ASPP
from deeplab_dpc.layers.decoder import Decoder
from deeplab_dpc.layers.dpc import DensePredictionCell
from deeplab_dpc.layers.ops import ConvBNReLU, PooledConvBNReLU, SeparableConvBNReLU

__all__ = ["ASPP", "ConvBNReLU", "Decoder", "DensePredictionCell", "PooledConvBNReLU",
           "SeparableConvBNReLU"]
