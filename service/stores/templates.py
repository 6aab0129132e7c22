"""Subject templates (`uploads/{user_id}/**`, `session:{user_id}:*`) shared by the files and redis plugins."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from service.stores.options import Options

_PLACEHOLDER = re.compile(r"\{([a-z][a-z0-9_]*)\}")


@dataclass(frozen=True)
class Template:
    """A glob pattern with exactly one `{identity_type}` placeholder, tagged with the data's category."""

    text: str
    identity_type: str
    category: str

    @classmethod
    def read(cls, opts: Options, pattern_option: str = "template") -> Template:
        text = opts.str(pattern_option, required=True)
        assert text is not None
        names = _PLACEHOLDER.findall(text)
        if len(names) != 1 or text.count("{") != 1 or text.count("}") != 1:
            raise opts.error(pattern_option, f"expected exactly one {{identity_type}} placeholder in {text!r}")
        category = opts.str("category", required=True)
        assert category is not None
        return cls(text=text, identity_type=names[0], category=category)

    def for_subject(self, value: str, escape: Callable[[str], str]) -> str:
        """The pattern matching one subject's items; the value is escaped so it matches only itself."""
        return self.text.replace("{" + self.identity_type + "}", escape(value))

    def for_everyone(self) -> str:
        return self.text.replace("{" + self.identity_type + "}", "*")
