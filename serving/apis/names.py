"""Kubernetes name rules (with apimachinery's exact messages) and Knative's ``ChildName``.

Pure; no side effects.
"""

from __future__ import annotations

import hashlib
import re
from typing import Final

DNS1123_LABEL_MAX: Final = 63
DNS1123_SUBDOMAIN_MAX: Final = 253
DNS1035_LABEL_MAX: Final = 63
QUALIFIED_NAME_MAX: Final = 63

_DNS1123_LABEL_FMT: Final = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_FMT: Final = _DNS1123_LABEL_FMT + r"(\." + _DNS1123_LABEL_FMT + ")*"
_DNS1035_LABEL_FMT: Final = "[a-z]([-a-z0-9]*[a-z0-9])?"
_QUALIFIED_NAME_FMT: Final = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_C_IDENTIFIER_FMT: Final = "[A-Za-z_][A-Za-z0-9_]*"


def regex_error(message: str, fmt: str, *examples: str) -> str:
    """apimachinery's ``RegexError`` wording."""
    if not examples:
        return f"{message} (regex used for validation is '{fmt}')"
    text = message + " (e.g. "
    for i, example in enumerate(examples):
        if i > 0:
            text += " or "
        text += f"'{example}', "
    return text + f"regex used for validation is '{fmt}')"


def max_len_error(length: int) -> str:
    return f"must be no more than {length} characters"


def _dns_name_errors(value: str, max_len: int, fmt: str, description: str, *examples: str) -> list[str]:
    """Kubernetes' messages for a name longer than ``max_len`` or not matching ``fmt``."""
    errors = []
    if len(value) > max_len:
        errors.append(max_len_error(max_len))
    if not re.fullmatch(fmt, value):
        errors.append(regex_error(description, fmt, *examples))
    return errors


def is_dns1123_label(value: str) -> list[str]:
    return _dns_name_errors(
        value, DNS1123_LABEL_MAX, _DNS1123_LABEL_FMT,
        "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
        "and must start and end with an alphanumeric character", "my-name", "123-abc")


def is_dns1123_subdomain(value: str) -> list[str]:
    return _dns_name_errors(
        value, DNS1123_SUBDOMAIN_MAX, _DNS1123_SUBDOMAIN_FMT,
        "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
        "and must start and end with an alphanumeric character", "example.com")


def is_dns1035_label(value: str) -> list[str]:
    return _dns_name_errors(
        value, DNS1035_LABEL_MAX, _DNS1035_LABEL_FMT,
        "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
        "alphabetic character, and end with an alphanumeric character", "my-name", "abc-123")


def name_is_dns1035_label(name: str, prefix: bool) -> list[str]:
    """apimachinery's ``NameIsDNS1035Label``: a generateName prefix may end in '-'."""
    if prefix:
        name = _mask_trailing_dash(name)
    return is_dns1035_label(name)


def _mask_trailing_dash(name: str) -> str:
    if len(name) > 1 and name.endswith("-"):
        return name[:-2] + "a"
    return name


def is_qualified_name(value: str) -> list[str]:
    errors: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errors.append("prefix part must be non-empty")
        else:
            errors.extend("prefix part " + e for e in is_dns1123_subdomain(prefix))
    else:
        return ["a qualified name " + regex_error(
            "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
            "alphanumeric character", _QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"]
    if not name:
        errors.append("name part must be non-empty")
    elif len(name) > QUALIFIED_NAME_MAX:
        errors.append("name part " + max_len_error(QUALIFIED_NAME_MAX))
    if name and not re.fullmatch(_QUALIFIED_NAME_FMT, name):
        errors.append("name part " + regex_error(
            "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
            "alphanumeric character", _QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc"))
    return errors


_LONGEST: Final = 63
_MD5_LEN: Final = 32
_HEAD: Final = _LONGEST - _MD5_LEN


def child_name(parent: str, suffix: str) -> str:
    """Knative's ``kmeta.ChildName``: ``parent + suffix``, hash-shortened to fit 63 characters."""
    name = parent
    if len(parent) > _LONGEST - len(suffix):
        if _HEAD - len(suffix) <= 0:
            digest = hashlib.md5((parent + suffix).encode(), usedforsecurity=False).hexdigest()
            if _HEAD < len(parent):
                parent = parent[:_HEAD]
            result = parent + digest
            room = _LONGEST - len(result)
            if room > 0:
                result += suffix[:room]
            while result and not result[-1].isalnum():
                result = result[:-1]
            return result
        name = parent[: _HEAD - len(suffix)] + hashlib.md5(parent.encode(), usedforsecurity=False).hexdigest()
    return name + suffix


def revision_name(configuration_name: str, generation: int) -> str:
    """``<config>-%05d`` of the Configuration's generation, hash-shortened past 63 characters."""
    return child_name(configuration_name, f"-{generation:05d}")
