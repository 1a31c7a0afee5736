"""The 3D U-Net: output shape, pooling schedule, widths."""

import pytest

torch = pytest.importorskip("torch")

from model_export.network import (  # noqa: E402
    POOLING,
    NetworkConfig,
    UNet3D,
    count_parameters,
    patch_multiple,
)


def test_output_has_one_logit_per_class_on_the_input_grid():
    net = UNet3D(NetworkConfig(width=4)).eval()
    with torch.no_grad():
        out = net(torch.zeros(2, 1, 8, 32, 40))
    assert out.shape == (2, 8, 8, 32, 40)


def test_pooling_is_1x2x2_then_2x2x2_twice():
    assert POOLING == ((1, 2, 2), (2, 2, 2), (2, 2, 2))
    assert patch_multiple() == (4, 8, 8)
    net = UNet3D(NetworkConfig(width=4)).eval()
    shapes = []
    for pool in net.pools:
        pool.register_forward_hook(lambda _m, _i, out: shapes.append(tuple(out.shape[2:])))
    with torch.no_grad():
        net(torch.zeros(1, 1, 8, 32, 32))
    assert shapes == [(8, 16, 16), (4, 8, 8), (2, 4, 4)]


def test_three_encoders_three_decoders_widths_double():
    net = UNet3D(NetworkConfig(width=6))
    assert len(net.encoders) == 3 and len(net.decoders) == 3
    convs = [m for m in net.encoders.modules() if isinstance(m, torch.nn.Conv3d)]
    assert [c.out_channels for c in convs[::2]] == [6, 12, 24]
    assert all(c.kernel_size == (3, 3, 3) for c in convs)
    norms = [m for m in net.modules() if isinstance(m, torch.nn.GroupNorm)]
    assert norms and all(6 % n.num_groups == 0 or n.num_channels % n.num_groups == 0 for n in norms)
    ups = [m for m in net.modules() if isinstance(m, torch.nn.Upsample)]
    assert [u.mode for u in ups] == ["trilinear"] * 3


def test_width_scales_the_parameter_count():
    small = count_parameters(UNet3D(NetworkConfig(width=4)))
    large = count_parameters(UNet3D(NetworkConfig(width=8)))
    assert 3.5 * small < large < 4.5 * small  # convolutions scale with width squared
