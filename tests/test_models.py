"""Shapes, options and the per-sample property of the generators and critics.

Shapes are checked with ``jax.eval_shape`` (no compilation); each numeric
check runs one jitted function, to keep the file fast on a shared CPU.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from divergences import models


@pytest.mark.parametrize("image_shape", [(8, 8, 1), (28, 28, 1), (8, 8, 3)])
def test_dcgan_shapes(image_shape):
    h, w, c = image_shape
    gen = models.DCGANGenerator(image_shape=image_shape, features=8)
    critic = models.DCGANCritic(image_shape=image_shape, features=8, spectral_norm=True)
    z = jax.ShapeDtypeStruct((5, 16), jnp.float32)
    x = jax.eval_shape(lambda z: gen.apply(gen.init(jax.random.key(0), z), z), z)
    assert x.shape == (5, h * w * c)
    cv = jax.eval_shape(lambda x: critic.init(jax.random.key(0), x), x)
    assert "batch_stats" in cv  # spectral norm's power-iteration state
    assert jax.eval_shape(critic.apply, cv, x).shape == (5,)
    # The critic also takes unflattened images.
    img = jax.ShapeDtypeStruct((5, h, w, c), jnp.float32)
    assert jax.eval_shape(critic.apply, cv, img).shape == (5,)
    unflat = models.DCGANGenerator(image_shape=image_shape, features=8, flat=False)
    assert jax.eval_shape(lambda z: unflat.apply(unflat.init(jax.random.key(0), z), z), z).shape == (5, h, w, c)


def test_dcgan_range_and_per_sample_critic():
    # One compiled function checks: generator output in [-1, 1] (tanh, like the
    # scaled data), and a layer-norm critic that does not couple samples (the
    # value of sample 0 does not move when the other samples change; batch norm
    # would break this, which a gradient penalty needs).
    gen = models.DCGANGenerator(image_shape=(8, 8, 1), features=4)
    critic = models.DCGANCritic(image_shape=(8, 8, 1), features=4, layer_norm=True)

    @jax.jit
    def run(key):
        k1, k2, k3, k4 = jax.random.split(key, 4)
        z = 3.0 * jax.random.normal(k1, (6, 4))
        x = gen.apply(gen.init(k2, z), z)
        cv = critic.init(k3, x)
        y = x.at[1:].set(jax.random.uniform(k4, (5, 64), minval=-1, maxval=1))
        return x, critic.apply(cv, x), critic.apply(cv, y)

    x, out_x, out_y = run(jax.random.key(0))
    assert float(jnp.max(jnp.abs(x))) <= 1.0
    # tolerance: float32 rounding of the same per-sample computation
    np.testing.assert_allclose(out_x[0], out_y[0], rtol=1e-5, atol=1e-6)


def test_mlp_spectral_norm_updates_batch_stats():
    critic = models.MLP(width=16, depth=2, spectral_norm=True)
    x = jax.random.normal(jax.random.key(0), (4, 3))

    @jax.jit
    def run(x):
        variables = critic.init(jax.random.key(1), x)
        out, mutated = critic.apply(variables, x, update_stats=True, mutable=["batch_stats"])
        return variables, out, mutated

    variables, out, mutated = run(x)
    assert out.shape == (4,)
    changed = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), variables["batch_stats"], mutated["batch_stats"])
    assert any(jax.tree.leaves(changed))  # the power iteration moved


def test_bad_image_shape():
    gen = models.DCGANGenerator(image_shape=(8, 6, 1))
    with pytest.raises(ValueError, match="`image_shape`"):
        jax.eval_shape(lambda z: gen.init(jax.random.key(0), z), jax.ShapeDtypeStruct((1, 4), jnp.float32))


def test_params_are_plain_pytrees():
    gen = models.DCGANGenerator(image_shape=(8, 8, 1), features=4)
    params = jax.eval_shape(lambda z: gen.init(jax.random.key(0), z), jax.ShapeDtypeStruct((1, 4), jnp.float32))
    assert isinstance(params["params"], dict)
    assert set(params) == {"params"}
