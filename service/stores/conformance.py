"""A reusable pytest suite for store plugins: subclass StoreConformance and give it a seeded `case` fixture.

    class TestMyStore(StoreConformance):
        @pytest.fixture
        def case(self, tmp_path):
            store = MyStore.from_config("mine", {...}, StoreContext(tmp_path, tmp_path))
            ...seed two or more subjects, some records older than the cutoff...
            return Case(store, subjects=[Subject({"user_id": "1"}, counts={...}, old=3), ...], ...)

Each test gets a freshly seeded store (the fixture runs once per test).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime

import pytest

from service.stores.contract import Identity, NotApplicable, Store, StoreError


@dataclass
class Subject:
    """A seeded subject: how many records of each category it has, and how many of `Case.expire_category`
    are older than `Case.cutoff`."""

    identity: Identity
    counts: dict[str, int]
    old: int = 0


@dataclass
class Case:
    """A store seeded for the suite. `subjects[0]` is the one acted on; every other must stay untouched.

    `hold_category` is put on hold in the exclusion test; `kept_with_hold` names categories the store
    rightly keeps for subjects[0] because of that hold (e.g. a parent row still referenced by held rows).
    """

    store: Store
    subjects: list[Subject]
    expire_category: str
    cutoff: datetime
    hold_category: str
    kept_with_hold: Collection[str] = ()
    batch_size: int = 3
    unknown: Identity = field(default_factory=lambda: {"user_id": "no-such-subject-424242"})


def counts(store: Store, identity: Identity) -> dict[str, int]:
    return dict(Counter(record.category for record in store.access(identity)))


def _nonzero(values: dict[str, int]) -> dict[str, int]:
    return {k: v for k, v in values.items() if v}


def _distinctive(identity: Identity) -> list[str]:
    # Short values (user id 7) occur by chance in anyone's data; longer ones (emails, tokens) must not.
    return [str(v) for v in identity.values() if len(str(v)) >= 6]


class StoreConformance:
    """The store contract as tests. Subclasses provide a function-scoped `case` fixture returning a Case."""

    def test_describe_names_the_seeded_categories_and_identity_types(self, case: Case) -> None:
        info = case.store.describe()
        assert info.name == case.store.name
        for subject in case.subjects:
            assert set(_nonzero(subject.counts)) <= set(info.categories)
            assert set(subject.identity) & set(info.identity_types)
        assert case.expire_category in info.categories and case.hold_category in info.categories

    def test_health(self, case: Case) -> None:
        case.store.health()

    def test_access_finds_exactly_each_subjects_data(self, case: Case) -> None:
        for subject in case.subjects:
            records = list(case.store.access(subject.identity))
            assert dict(Counter(r.category for r in records)) == _nonzero(subject.counts)
            text = json.dumps([r.fields for r in records], default=str)
            for other in case.subjects:
                if other is not subject:
                    for value in _distinctive(other.identity):
                        assert value not in text, "another subject's identifier in this subject's records"

    def test_an_unusable_identity_is_not_applicable(self, case: Case) -> None:
        with pytest.raises(NotApplicable):
            case.store.access({"no_such_identity_type": "x"})  # raised at once, not at the first record
        with pytest.raises(NotApplicable):
            case.store.erase({"no_such_identity_type": "x"})

    def test_an_unknown_subject_has_nothing(self, case: Case) -> None:
        assert list(case.store.access(case.unknown)) == []
        assert _nonzero(case.store.erase(case.unknown)) == {}

    def test_erase_removes_the_subject_and_is_idempotent(self, case: Case) -> None:
        target, others = case.subjects[0], case.subjects[1:]
        result = case.store.erase(target.identity)
        assert all(isinstance(v, int) for v in result.values())
        assert _nonzero(result) == _nonzero(target.counts)
        assert counts(case.store, target.identity) == {}
        assert _nonzero(case.store.erase(target.identity)) == {}
        for other in others:
            assert counts(case.store, other.identity) == _nonzero(other.counts)

    def test_excluded_categories_survive_erasure(self, case: Case) -> None:
        target = case.subjects[0]
        assert target.counts.get(case.hold_category), "seed subjects[0] with data in hold_category"
        result = case.store.erase(target.identity, exclude_categories=[case.hold_category])
        assert case.hold_category not in result
        left = counts(case.store, target.identity)
        kept = {case.hold_category, *case.kept_with_hold}
        assert left == _nonzero({c: n for c, n in target.counts.items() if c in kept})
        for other in case.subjects[1:]:
            assert counts(case.store, other.identity) == _nonzero(other.counts)

    def _category_totals(self, case: Case) -> list[int]:
        return [counts(case.store, s.identity).get(case.expire_category, 0) for s in case.subjects]

    def test_dry_run_counts_and_changes_nothing(self, case: Case) -> None:
        before = self._category_totals(case)
        batches = list(case.store.expire(case.expire_category, case.cutoff, batch_size=case.batch_size,
                                         dry_run=True))
        assert sum(batches) == sum(s.old for s in case.subjects) > case.batch_size
        assert all(0 < b <= case.batch_size for b in batches)
        assert self._category_totals(case) == before

    def test_expire_respects_the_cutoff_and_the_batch_size(self, case: Case) -> None:
        batches = list(case.store.expire(case.expire_category, case.cutoff, batch_size=case.batch_size))
        assert all(isinstance(b, int) and 0 < b <= case.batch_size for b in batches)
        assert sum(batches) == sum(s.old for s in case.subjects)
        assert self._category_totals(case) == [
            s.counts.get(case.expire_category, 0) - s.old for s in case.subjects]
        assert list(case.store.expire(case.expire_category, case.cutoff, batch_size=case.batch_size)) == []

    def test_expire_skips_excluded_subjects(self, case: Case) -> None:
        held = case.subjects[0]
        assert held.old, "seed subjects[0] with records older than the cutoff"
        batches = case.store.expire(case.expire_category, case.cutoff, batch_size=case.batch_size,
                                    exclude_subjects=[held.identity])
        assert sum(batches) == sum(s.old for s in case.subjects[1:])
        assert counts(case.store, held.identity) == _nonzero(held.counts)

    def test_expire_resumes_after_a_crash_without_loss_or_double_counting(self, case: Case) -> None:
        total = sum(s.old for s in case.subjects)
        run = case.store.expire(case.expire_category, case.cutoff, batch_size=case.batch_size)
        first = next(iter(run))
        getattr(run, "close", lambda: None)()  # the worker dies after recording its first batch
        assert sum(self._category_totals(case)) == sum(
            s.counts.get(case.expire_category, 0) for s in case.subjects) - first
        rest = sum(case.store.expire(case.expire_category, case.cutoff, batch_size=case.batch_size))
        assert first + rest == total
        assert self._category_totals(case) == [
            s.counts.get(case.expire_category, 0) - s.old for s in case.subjects]

    def test_expire_checks_its_arguments(self, case: Case) -> None:
        with pytest.raises(StoreError):
            case.store.expire("no-such-category", case.cutoff)
        with pytest.raises(StoreError):
            case.store.expire(case.expire_category, case.cutoff.replace(tzinfo=None))
        with pytest.raises(StoreError):
            case.store.expire(case.expire_category, case.cutoff, batch_size=0)
