"""A reusable pytest suite for store plugins: subclass StoreConformance and give it a seeded `case` fixture.

    class TestMyStore(StoreConformance):
        @pytest.fixture
        def case(self, tmp_path):
            store = MyStore.from_config("mine", {...}, StoreContext(tmp_path, tmp_path))
            ...seed two or more subjects, some records older than the cutoff...
            return Case(store, subjects=[Subject({"user_id": "1"}, counts={...}, old=3), ...], ...)

Each test gets a freshly seeded store (the fixture runs once per test). A store that declares the "subjects"
capability also needs `Case.window` (a `Window`); the suite skips those checks for stores without it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest

from service.stores.contract import SUBJECTS, Identity, NotApplicable, Store, StoreError, can_list_subjects


@dataclass
class Subject:
    """A seeded subject: how many records of each category it has, and how many of `Case.expire_category`
    are older than `Case.cutoff`."""

    identity: Identity
    counts: dict[str, int]
    old: int = 0


@dataclass
class Window:
    """What `subjects` must list for `category`: `expect(since, until)` gives, from what was seeded, the identities
    (every type the store can read) of the subjects with a record of it in [since, until). The suite lists
    [since, until) with `batch_size` (give enough subjects for several batches) and probes the second on either
    side of each of `edges`, record times of the category (whole seconds, so every backend stores them exactly).
    """

    category: str
    since: datetime
    until: datetime
    expect: Callable[[datetime, datetime], list[Identity]]
    edges: list[datetime] = field(default_factory=list)
    batch_size: int = 2


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
    window: Window | None = None
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

    def _listed(self, case: Case, since: datetime, until: datetime, batch_size: int) -> list[dict[str, str]]:
        assert case.window is not None
        batches = list(case.store.subjects(case.window.category, since, until, batch_size=batch_size))
        assert all(isinstance(b, list) and 0 < len(b) <= batch_size for b in batches)
        return [identity for batch in batches for identity in batch]

    def _window(self, case: Case) -> Window:
        if not can_list_subjects(case.store):
            pytest.skip("the store does not declare the subjects capability")
        assert case.window is not None, "a store with the subjects capability needs Case.window"
        return case.window

    def test_subjects_is_declared_with_the_method(self, case: Case) -> None:
        declared = SUBJECTS in case.store.describe().capabilities
        assert declared == can_list_subjects(case.store)
        assert not declared or callable(getattr(case.store, "subjects", None))

    def test_subjects_lists_each_subject_of_the_window_once_in_batches(self, case: Case) -> None:
        window = self._window(case)
        expected = window.expect(window.since, window.until)
        assert len(expected) > window.batch_size, "seed more subjects in the window than one batch holds"
        listed = self._listed(case, window.since, window.until, window.batch_size)
        assert all(isinstance(v, str) and v for identity in listed for v in identity.values())
        assert len({_key(i) for i in listed}) == len(listed), "a subject listed twice"
        assert sorted(map(_key, listed)) == sorted(map(_key, expected))
        everyone = window.expect(window.since - timedelta(days=36500), window.until + timedelta(days=36500))
        assert len(everyone) > len(expected), "seed subjects outside the window too"

    def test_subjects_window_edges_are_since_inclusive_until_exclusive(self, case: Case) -> None:
        window = self._window(case)
        if not window.edges:
            pytest.skip("no record times with whole seconds to probe the edges at")
        second = timedelta(seconds=1)
        for edge in window.edges:
            at = window.expect(edge, edge + second)
            assert at, "an edge must be a record's time"
            assert sorted(map(_key, self._listed(case, edge, edge + second, 1))) == sorted(map(_key, at))
            assert sorted(map(_key, self._listed(case, edge - second, edge, 1))) == sorted(
                map(_key, window.expect(edge - second, edge)))

    def test_subjects_of_a_window_without_records_is_empty(self, case: Case) -> None:
        window = self._window(case)
        later = window.until + timedelta(days=36500)
        assert window.expect(later, later + timedelta(days=1)) == []
        assert self._listed(case, later, later + timedelta(days=1), window.batch_size) == []

    def test_subjects_excludes_erased_subjects(self, case: Case) -> None:
        window = self._window(case)
        everyone = window.expect(window.since - timedelta(days=36500), window.until + timedelta(days=36500))
        target = next((s for s in case.subjects if _nonzero(s.counts).get(window.category)), None)
        assert target is not None
        case.store.erase(target.identity)
        ids = {(k, str(v)) for k, v in target.identity.items()}
        listed = self._listed(case, window.since - timedelta(days=36500), window.until + timedelta(days=36500),
                              window.batch_size)
        assert not any(set(i.items()) & ids for i in listed)
        assert len(listed) == len([i for i in everyone if not set(i.items()) & ids])

    def test_subjects_checks_its_arguments(self, case: Case) -> None:
        window = self._window(case)
        since, until = window.since, window.until
        for call in (lambda: case.store.subjects("no-such-category", since, until),
                     lambda: case.store.subjects(window.category, since.replace(tzinfo=None), until),
                     lambda: case.store.subjects(window.category, since, until.replace(tzinfo=None)),
                     lambda: case.store.subjects(window.category, until, since),
                     lambda: case.store.subjects(window.category, since, since),
                     lambda: case.store.subjects(window.category, since, until, batch_size=0)):
            with pytest.raises(StoreError):
                call()  # at the call, before the first batch


def _key(identity: Identity) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, str(v)) for k, v in identity.items()))
