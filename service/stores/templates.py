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

    def value_pattern(self, *, paths: bool) -> re.Pattern[str]:
        """A regex matching what `for_everyone()` matches (glob: `*`, `?`, `[...]`, `\\x`, and `**` for paths) and
        capturing the identity value: read from a file's relative path (`paths`: `*` stays within a path segment)
        or from a Redis key. The shortest value wins where a pattern allows several."""
        one, value = ("[^/]", "[^/]+?") if paths else (".", ".+?")
        placeholder = "{" + self.identity_type + "}"
        out, i, text = [], 0, self.text
        while i < len(text):
            if text.startswith(placeholder, i):
                out.append(f"(?P<value>{value})")
                i += len(placeholder)
            elif text.startswith("**", i) and paths:
                out.append(".*")
                i += 2
            elif text[i] == "*":
                out.append(one + "*")
                i += 1
            elif text[i] == "?":
                out.append(one)
                i += 1
            elif text[i] == "[" and (end := text.find("]", i + 2)) != -1:
                body = text[i + 1:end]
                out.append("[" + ("^" + body[1:] if body[0] in "!^" else body).replace("\\", "\\\\") + "]")
                i = end + 1
            elif text[i] == "\\" and i + 1 < len(text) and not paths:
                out.append(re.escape(text[i + 1]))
                i += 2
            else:
                out.append(re.escape(text[i]))
                i += 1
        return re.compile("".join(out), re.DOTALL)
