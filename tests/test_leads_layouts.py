from __future__ import annotations

import numpy as np
import pytest

from ecgnb import layouts, leads


def test_assemble_satisfies_relations(rng):
    indep = {n: rng.normal(size=500) for n in ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")}
    sig = leads.assemble(indep)
    assert sig.shape == (500, 12)
    assert max(leads.relation_errors(sig).values()) < 1e-12
    np.testing.assert_allclose(sig[:, leads.LEAD_INDEX["aVF"]], indep["II"] - indep["I"] / 2)


def test_relation_errors_detects_violation(rng):
    indep = {n: rng.normal(size=500) for n in ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")}
    sig = leads.assemble(indep)
    sig[:, leads.LEAD_INDEX["III"]] += 0.5
    assert leads.relation_errors(sig)["III"] > 0.1


@pytest.mark.parametrize("raw,expected", [("AVR", "aVR"), ("avl", "aVL"), (" ii ", "II"), ("v6", "V6")])
def test_canonical_lead(raw, expected):
    assert leads.canonical_lead(raw) == expected


def test_canonical_lead_rejects_unknown():
    with pytest.raises(KeyError, match="unknown lead name"):
        leads.canonical_lead("V7")


def test_standard_layout_panels():
    panels = layouts.panels("3x4+1", 10.0)
    assert len(panels) == 13
    first = panels[0]
    assert (first.lead, first.t0_s, first.t1_s) == ("I", 0.0, 2.5)
    rhythm = [p for p in panels if p.rhythm]
    assert [(p.lead, p.t0_s, p.t1_s) for p in rhythm] == [("II", 0.0, 10.0)]
    assert layouts.n_rows("3x4+1") == 4


@pytest.mark.parametrize("name", sorted(layouts.LAYOUTS))
def test_every_layout_shows_all_12_leads(name):
    assert {p.lead for p in layouts.panels(name)} == set(leads.LEAD_NAMES)


def test_unknown_layout_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown layout '5x5'.*3x4\\+1"):
        layouts.panels("5x5")
