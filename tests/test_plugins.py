"""Registry and plugin loading: entry points only, explicit registration, clear errors."""

from __future__ import annotations

import json
import sys
import textwrap
from importlib.metadata import entry_points

import pytest

from helpers import seqattn
from seqattn import SeqattnError, hookimpl
from seqattn.plugins import PluginManager
from seqattn.registry import Registry


def test_builtins_arrive_through_the_entry_point_group():
    eps = {ep.name: ep for ep in entry_points(group="seqattn")}
    assert {"attention", "transformer", "seq2seq", "text"} <= set(eps)
    manager = PluginManager()
    by_plugin = {e.plugin for e in manager.registry.entries()}
    assert by_plugin <= set(eps)  # every component came from an entry-point plugin
    builtin = [e for e in manager.registry.entries() if eps[e.plugin].dist.name == "seqattn"]
    assert {e.kind for e in builtin} >= {"tokenizer", "encoder", "attention", "decoder", "model", "task"}
    for e in builtin:
        assert e.distribution == "seqattn"
        assert e.module.startswith(eps[e.plugin].value)


def test_disabling_an_entry_point_removes_its_components(monkeypatch):
    monkeypatch.setenv("SEQATTN_DISABLE_PLUGINS", "attention")
    registry = PluginManager().registry
    assert registry.names("attention") == []
    assert "transformer" in registry.names("encoder")


def test_importing_a_plugin_registers_nothing():
    import seqattn_attention  # noqa: F401  the import alone must not touch any registry

    assert Registry().names("attention") == []


def test_duplicate_names_both_distributions():
    r = Registry()
    r.add("attention", "dot", object, plugin="a", distribution="dist-one")
    with pytest.raises(SeqattnError, match="dist-one.*dist-two"):
        r.add("attention", "dot", object, plugin="b", distribution="dist-two")


def test_duplicate_through_the_hook_is_an_error():
    class Clash:
        @hookimpl
        def seqattn_register(self, registry):
            registry.add("attention", "scaled_dot", object)

    with pytest.raises(SeqattnError, match="registered twice.*seqattn.*<in-process>"):
        PluginManager(extra_plugins=(("clash", Clash()),))


def test_unknown_name_lists_known_and_closest():
    registry = PluginManager().registry
    with pytest.raises(SeqattnError) as err:
        registry.get("attention", "scaled_dott")
    assert "did you mean 'scaled_dot'" in str(err.value)
    assert "additive" in str(err.value)


def test_broken_plugin_is_reported_and_others_still_load(tmp_path, monkeypatch):
    dist = tmp_path / "brokenplug-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: brokenplug\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[seqattn]\nbroken = brokenplug_mod\n")
    (tmp_path / "brokenplug_mod.py").write_text(textwrap.dedent("raise ImportError('no such thing')\n"))
    monkeypatch.syspath_prepend(str(tmp_path))
    manager = PluginManager()
    assert [(d, n) for d, n, _ in manager.failures] == [("brokenplug", "broken")]
    assert "scaled_dot" in manager.registry.names("attention")
    sys.modules.pop("brokenplug_mod", None)


def test_cli_plugins_json_lists_every_kind():
    out = seqattn("plugins", "--json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    kinds = {r["kind"] for r in rows}
    assert {"tokenizer", "encoder", "attention", "decoder"} <= kinds
    for r in rows:
        assert {"kind", "name", "distribution", "module"} <= set(r)
        if r["module"].split(".")[0] in {"seqattn_attention", "seqattn_transformer", "seqattn_text", "seqattn_rnn"}:
            assert r["distribution"] == "seqattn"
    text = seqattn("plugins")
    assert text.returncode == 0 and "scaled_dot" in text.stdout and "seqattn_attention.scaled_dot" in text.stdout


def test_plugin_failing_inside_its_hook_is_reported():
    class Broken:
        @hookimpl
        def seqattn_register(self, registry):
            import seqattn_no_such_module  # noqa: F401

    manager = PluginManager(extra_plugins=(("broken", Broken()),))
    assert [(d, n) for d, n, _ in manager.failures] == [("<in-process>", "broken")]
    assert "ModuleNotFoundError" in manager.failures[0][2]
    assert "transformer" in manager.registry.names("encoder")
