import pytest
import torch

from CoopSegLib.cooperative import frozen_batchnorm_statistics, generate_hard_examples
from CoopSegLib.masking import LatentMasker
from CoopSegLib.networks import CoopSegModel, NetworkConfig

from toy_slices import SMALL_WIDTHS


def batchnorm_state(module):
    return {k: v.clone() for k, v in module.state_dict().items() if "running" in k or "num_batches" in k}


@pytest.mark.parametrize("scheme", ["dropout", "channel", "spatial"])
def test_generation_leaves_parameters_and_batchnorm_statistics_untouched(scheme, rings):
    torch.manual_seed(0)
    images, labels = rings
    model = CoopSegModel(NetworkConfig(widths=SMALL_WIDTHS)).train()
    easy = model.ftn(images)
    before = batchnorm_state(model)
    hard = generate_hard_examples(model.ftn, LatentMasker(schemes=(scheme,)), easy.z_i, easy.z_s, images, labels)
    after = batchnorm_state(model)
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in model.parameters())  # neither decoders nor encoder got gradients
    assert not hard.image.requires_grad and not hard.logits.requires_grad
    assert hard.image_scheme == hard.shape_scheme == scheme
    assert hard.image.shape == images.shape and hard.logits.shape == (8, 4, 32, 32)
    assert 0.0 <= hard.image.min() and hard.image.max() <= 1.0


def test_masking_changes_the_decoded_examples(rings):
    torch.manual_seed(0)
    images, labels = rings
    model = CoopSegModel(NetworkConfig(widths=SMALL_WIDTHS)).train()
    easy = model.ftn(images)
    with frozen_batchnorm_statistics(model.ftn), torch.no_grad():
        clean = model.ftn.reconstruct(easy.z_i)
    # p drawn near the top of its range so that the masks surely bite
    masker = LatentMasker(schemes=("channel",), max_mask_fraction=1.0, soft_masking=False)
    hard = generate_hard_examples(model.ftn, masker, easy.z_i, easy.z_s, images, labels)
    assert round(hard.image_fraction * SMALL_WIDTHS[-1]) >= 1  # (seeded) at least one channel masked
    assert not torch.allclose(hard.image, clean)


def test_frozen_batchnorm_restores_tracking_and_keeps_batch_statistics():
    torch.manual_seed(0)
    layer = torch.nn.BatchNorm2d(3).train()
    x = torch.randn(4, 3, 5, 5) * 3 + 2
    reference = torch.nn.functional.batch_norm(x, None, None, layer.weight, layer.bias, training=True)
    with frozen_batchnorm_statistics(layer):
        y = layer(x)
    assert torch.allclose(y, reference, atol=1e-5)  # normalised with batch statistics, as in training
    assert torch.equal(layer.running_mean, torch.zeros(3)) and layer.num_batches_tracked.item() == 0
    assert layer.track_running_stats
    layer(x)
    assert layer.num_batches_tracked.item() == 1  # tracking works again outside
