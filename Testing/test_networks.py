import pytest
import torch

from CoopSegLib.networks import PAPER_WIDTHS, FastThinkingNetwork, ShapeAutoencoder, soften
from CoopSegLib.networks.codec import decoder_widths, size_divisor


@pytest.mark.parametrize(
    "widths, size",
    [(PAPER_WIDTHS, (192, 192)), (PAPER_WIDTHS, (64, 96)), ((8, 16, 32), (20, 36)), ((4, 8, 8, 16, 16, 32), (64, 128))],
)
def test_ftn_and_stn_shapes(widths, size):
    torch.manual_seed(0)
    ftn, stn = FastThinkingNetwork(widths=widths), ShapeAutoencoder(widths=widths)
    x = torch.rand(2, 1, *size)
    out = ftn(x)
    divisor = size_divisor(widths)
    code_shape = (2, widths[-1], size[0] // divisor, size[1] // divisor)
    assert out.logits.shape == (2, 4, *size)
    assert out.reconstruction.shape == (2, 1, *size)
    assert out.z_i.shape == code_shape and out.z_s.shape == code_shape
    assert stn(soften(out.logits)).shape == (2, 4, *size)
    assert 0.0 <= out.reconstruction.min() and out.reconstruction.max() <= 1.0  # sigmoid output
    assert out.z_s.min() >= 0.0  # the decoupler ends in a ReLU: a sparse, non-negative code
    assert (out.z_s == 0).any()


def test_paper_network_matches_the_published_structure():
    ftn, stn = FastThinkingNetwork(), ShapeAutoencoder()
    assert ftn(torch.rand(1, 1, 192, 192)).z_i.shape == (1, 128, 12, 12)  # the paper's 128x12x12 code
    assert decoder_widths(PAPER_WIDTHS) == (64, 32, 16, 16)
    parameters = sum(p.numel() for p in [*ftn.parameters(), *stn.parameters()])
    assert 2.3e6 < parameters < 2.7e6  # "about 2.5 M parameters in all"


def test_size_that_is_not_a_multiple_of_the_divisor_is_rejected_with_a_hint():
    with pytest.raises(ValueError, match="not a multiple of 16"):
        FastThinkingNetwork()(torch.rand(1, 1, 100, 96))


def test_code_sharing_variants():
    x = torch.rand(2, 1, 32, 32)
    shared_a = FastThinkingNetwork(widths=(8, 16, 32, 32), code_sharing="image")
    assert shared_a.decoupler is None
    z_i, z_s = shared_a.codes(x)
    assert z_s is z_i
    shared_b = FastThinkingNetwork(widths=(8, 16, 32, 32), code_sharing="shape")
    z_i, z_s = shared_b.codes(x)
    assert z_i is z_s and torch.equal(z_s, shared_b.decoupler(shared_b.encoder(x)))
    decoupled = FastThinkingNetwork(widths=(8, 16, 32, 32))
    z_i, z_s = decoupled.codes(x)
    assert not torch.equal(z_i, z_s)
    with pytest.raises(ValueError, match="code_sharing"):
        FastThinkingNetwork(code_sharing="both")


def test_stn_refine_uses_temperature_two_softmax():
    torch.manual_seed(0)
    stn = ShapeAutoencoder(widths=(8, 16, 32)).eval()
    logits = torch.randn(2, 4, 16, 16) * 3
    expected = stn(torch.softmax(logits / 2, dim=1))
    assert torch.allclose(stn.refine(logits), expected)
    assert not torch.allclose(stn.refine(logits, temperature=1.0), expected)


def test_initialisation_follows_the_authors():
    torch.manual_seed(0)
    ftn = FastThinkingNetwork()
    bn_weights = torch.cat([m.weight.detach() for m in ftn.modules() if isinstance(m, torch.nn.BatchNorm2d)])
    assert abs(bn_weights.mean().item() - 1.0) < 0.01 and 0.01 < bn_weights.std().item() < 0.03
