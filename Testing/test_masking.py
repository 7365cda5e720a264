import pytest
import torch

from CoopSegLib.masking import (
    LatentMasker,
    masked_count,
    random_dropout_mask,
    targeted_channel_mask,
    targeted_spatial_mask,
    task_gradient,
)


def positive_code(shape=(3, 40, 6, 5), seed=0):
    """A latent code with no zero entries, so masked entries are recognisable."""
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed)) + 0.5


@pytest.mark.parametrize("p", [0.0, 0.1, 0.25, 0.37, 0.5])
def test_dropout_zeroes_exactly_the_fraction_of_channels(p):
    z = positive_code()
    masked = z * random_dropout_mask(z, p, torch.Generator().manual_seed(1))
    dropped = (masked == 0).all(dim=(2, 3))  # N x C: channels that are entirely zero
    assert (dropped.sum(dim=1) == round(p * 40)).all()
    kept = ~dropped
    assert torch.equal(masked[kept], z[kept])  # survivors are not rescaled (the paper, not dropout2d's x2)


def test_dropout_draws_channels_uniformly():
    z = positive_code((1, 20, 2, 2))
    generator = torch.Generator().manual_seed(0)
    rate = torch.stack([(random_dropout_mask(z, 0.3, generator) == 0).flatten() for _ in range(2000)]).float().mean(0)
    assert torch.allclose(rate, torch.full_like(rate, 0.3), atol=0.05)  # each channel dropped with probability ~p


def linear_loss(weights):
    """A loss whose gradient with respect to z is exactly ``weights``: loss = sum(weights * z)."""
    return lambda out: (out * weights).sum()


def test_targeted_channel_mask_hits_the_channels_with_the_largest_gradient_magnitude():
    z = positive_code((2, 10, 4, 4))
    weights = torch.zeros(2, 10, 4, 4)
    # Sample 0: channels 7 (negative) and 2 are the most salient; sample 1: channels 0 and 9.
    for n, channel, value in [(0, 7, -5.0), (0, 2, 4.0), (0, 4, 0.5), (1, 0, 3.0), (1, 9, -6.0), (1, 3, 1.0)]:
        weights[n, channel] = value
    gradient = task_gradient(z, lambda code: code, linear_loss(weights))
    assert torch.equal(gradient, weights)
    masked = z * targeted_channel_mask(gradient, p=0.2, soft_masking=False)  # round(0.2 * 10) = 2 channels
    zero_channels = [set(torch.nonzero((masked[n] == 0).all(dim=(1, 2))).flatten().tolist()) for n in range(2)]
    assert zero_channels == [{2, 7}, {0, 9}]
    untouched = masked != 0
    assert torch.equal(masked[untouched], z[untouched])


def test_targeted_spatial_mask_hits_the_positions_with_the_largest_gradient_magnitude():
    z = positive_code((1, 8, 5, 5))
    weights = torch.zeros(1, 8, 5, 5)
    weights[0, :, 1, 3] = -2.0
    weights[0, :, 4, 0] = 3.0
    weights[0, :, 2, 2] = 1.0
    weights[0, :, 0, 0] = 0.1
    gradient = task_gradient(z, lambda code: code, linear_loss(weights))
    p = 0.12  # round(0.12 * 25) = 3 positions
    masked = z * targeted_spatial_mask(gradient, p, soft_masking=False)
    zero_positions = set(map(tuple, torch.nonzero((masked[0] == 0).all(dim=0)).tolist()))
    assert zero_positions == {(1, 3), (4, 0), (2, 2)}
    assert masked_count(p, 25) == 3


@pytest.mark.parametrize("make_mask", [targeted_channel_mask, targeted_spatial_mask])
def test_soft_masks_scale_by_one_factor_below_a_half(make_mask):
    z = positive_code((4, 16, 6, 6))
    gradient = torch.randn(z.shape, generator=torch.Generator().manual_seed(3))
    mask = make_mask(gradient, 0.4, soft_masking=True, generator=torch.Generator().manual_seed(4))
    masked = z * mask
    for n in range(4):
        mask_n = mask[n].expand_as(z[n])
        factors = mask_n[mask_n != 1].unique()
        assert factors.numel() == 1  # one a per sample, as in the paper's a*1
        a = factors.item()
        assert 0.0 < a < 0.5
        assert torch.allclose(masked[n][mask_n != 1], a * z[n][mask_n != 1])
        assert torch.equal(masked[n][mask_n == 1], z[n][mask_n == 1])


@pytest.mark.parametrize("make_mask", [targeted_channel_mask, targeted_spatial_mask])
def test_a_given_soft_factor_is_used_as_is(make_mask):
    gradient = torch.randn(2, 16, 6, 6, generator=torch.Generator().manual_seed(6))
    mask = make_mask(gradient, 0.25, factor=0.3)
    assert set(mask.unique().tolist()) == {torch.tensor(0.3).item(), 1.0}
    with pytest.raises(ValueError, match="soft factor"):
        make_mask(gradient, 0.25, factor=1.5)


@pytest.mark.parametrize("make_mask, units", [(targeted_channel_mask, 16), (targeted_spatial_mask, 36)])
@pytest.mark.parametrize("p", [0.05, 0.3, 0.5])
def test_targeted_masks_cover_exactly_the_fraction(make_mask, units, p):
    gradient = torch.randn(3, 16, 6, 6, generator=torch.Generator().manual_seed(5))
    mask = make_mask(gradient, p, soft_masking=False)
    assert ((mask == 0).flatten(1).sum(1) == round(p * units)).all()


def test_fraction_out_of_range_is_rejected():
    with pytest.raises(ValueError, match="masking fraction"):
        random_dropout_mask(positive_code(), 1.5)


def test_task_gradient_leaves_decoder_parameters_without_gradients():
    decoder = torch.nn.Conv2d(4, 2, 3, padding=1)
    z = positive_code((2, 4, 5, 5))
    gradient = task_gradient(z, decoder, lambda out: out.square().mean())
    assert gradient.shape == z.shape and gradient.abs().sum() > 0
    assert all(p.grad is None for p in decoder.parameters())


def test_masker_draws_every_scheme_with_fraction_below_the_maximum():
    masker = LatentMasker()
    generator = torch.Generator().manual_seed(0)
    draws = [masker.draw(generator) for _ in range(600)]
    counts = {scheme: sum(d[0] == scheme for d in draws) for scheme in ("dropout", "channel", "spatial")}
    assert all(150 < c < 250 for c in counts.values()), counts  # uniform choice
    fractions = torch.tensor([d[1] for d in draws])
    assert fractions.min() >= 0.0 and fractions.max() < 0.5 and abs(fractions.mean().item() - 0.25) < 0.03


def test_masker_without_targeted_schemes_never_asks_for_a_gradient():
    masker = LatentMasker(schemes=("dropout",))
    z = positive_code()

    def no_gradient():
        raise AssertionError("a dropout-only masker must not compute task gradients")

    results = [masker(z, no_gradient) for _ in range(20)]
    assert {r.scheme for r in results} == {"dropout"}
    for r in results:
        assert ((r.code == 0).all(dim=(2, 3)).sum(1) == round(r.fraction * 40)).all()


def test_masker_rejects_unknown_schemes():
    with pytest.raises(ValueError, match="masking schemes"):
        LatentMasker(schemes=("dropout", "cutout"))
