"""The CSS cascade of an HTML page, as far as it decides what a reader sees.

Style sheets (``<style>`` blocks) and ``style`` attributes are parsed with tinycss2;
selectors are matched and ranked by cssselect2 (the selector engine of WeasyPrint, which
indexes rules by id, class and tag, so large style sheets stay fast), with soupsieve
(BeautifulSoup's ``.select``) for the valid selectors cssselect2 does not implement
(``:required``, ``:dir()``, ...). The declaration that wins for each element and property
is the one a browser applies (CSS 2.2 section 6.4.3: importance, then inline style, then
specificity, then source order). Rules inside ``@media`` apply when the query matches a
desktop window of ``VIEWPORT`` pixels; ``@supports`` and ``@layer`` blocks are taken as
applying. External style sheets (``<link>``) are not fetched.
"""

from __future__ import annotations

import warnings
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import cssselect2
import cssselect2.parser
import soupsieve
import tinycss2
from bs4 import BeautifulSoup, Tag

VIEWPORT = (1280, 800)  # (width, height) in px of the window @media queries are tested on
FONT_PX = 16.0  # the default font size: 1em = 1rem = 16px
_ABSOLUTE_PX = {
    "px": 1.0,
    "pt": 4 / 3,
    "pc": 16.0,
    "in": 96.0,
    "cm": 96 / 2.54,
    "mm": 9.6 / 2.54,
    "q": 2.4 / 2.54,
    "em": FONT_PX,
    "rem": FONT_PX,
    "vw": VIEWPORT[0] / 100,
    "vh": VIEWPORT[1] / 100,
}
_SCREEN_TYPES = {"all", "screen"}


@dataclass(frozen=True)
class Declaration:
    """One ``name: value`` pair; ``value`` is tinycss2 component values without whitespace."""

    name: str
    value: tuple
    important: bool = False


@dataclass(frozen=True)
class Rule:
    """A style rule: its selectors (tinycss2 tokens, one list each) and its declarations."""

    selectors: tuple[list, ...]
    declarations: tuple[Declaration, ...]


Style = dict[str, Declaration]  # the winning declaration of each property of one element


def parse_declarations(css: str) -> tuple[Declaration, ...]:
    """Declarations of a ``style`` attribute or a rule body; malformed ones are skipped."""
    parsed = tinycss2.parse_blocks_contents(css, skip_comments=True, skip_whitespace=True)
    return tuple(_declarations(parsed))


def parse_rules(css: str) -> list[Rule]:
    """Style rules of a style sheet in source order, those of matching ``@media`` included.

    A rule whose selector list does not parse is dropped whole, as browsers drop it.
    """
    return list(_rules(tinycss2.parse_stylesheet(css, skip_comments=True, skip_whitespace=True)))


def cascade(
    soup: BeautifulSoup, rules: list[Rule], properties: set[str] | None = None
) -> dict[int, Style]:
    """The winning declarations of every element that has any, keyed by ``id(tag)``.

    Only ``properties`` are looked at when given (rules without any are not matched).

    ``rules`` come from the page's style sheets in document order; ``style`` attributes
    are read here. Rules for pseudo-elements (``::before``) style generated content, not
    the element, and are left out; so are selectors that match nothing in a static page
    (``:hover``, ``:focus``).
    """
    root, tags = _mirror(soup)
    matcher = cssselect2.Matcher()
    ranked: dict[int, list[tuple[tuple, Declaration]]] = {}

    def add(tag: Tag, key: tuple, declarations: tuple[Declaration, ...]) -> None:
        for index, declaration in enumerate(declarations):
            ranked.setdefault(id(tag), []).append(
                ((declaration.important, *key, index), declaration)
            )

    def wanted(declarations: tuple[Declaration, ...]) -> tuple[Declaration, ...]:
        return tuple(d for d in declarations if properties is None or d.name in properties)

    for order, rule in enumerate(rules):
        declarations = wanted(rule.declarations)
        for selector in rule.selectors if declarations else ():
            try:
                for compiled in cssselect2.compile_selector_list(selector):
                    matcher.add_selector(compiled, (order, declarations))
            except cssselect2.SelectorError:  # valid CSS that cssselect2 does not implement
                specificity = next(cssselect2.parser.parse(selector)).specificity
                for tag in _select(soup, tinycss2.serialize(selector)):
                    add(tag, (False, specificity, order), declarations)
    for element in cssselect2.ElementWrapper.from_html_root(root).iter_subtree():
        tag = tags.get(id(element.etree_element))
        for specificity, _, pseudo, (order, declarations) in matcher.match(element):
            if tag is not None and pseudo is None:
                add(tag, (False, specificity, order), declarations)
    for tag in soup.find_all(style=True):
        add(tag, (True, (0, 0, 0), len(rules)), wanted(parse_declarations(str(tag["style"]))))
    styles: dict[int, Style] = {}
    for tag_id, entries in ranked.items():
        entries.sort(key=lambda entry: entry[0])
        styles[tag_id] = {declaration.name: declaration for _, declaration in entries}
    return styles


def media_applies(query: str | list) -> bool:
    """Whether a media query list (text or tinycss2 tokens) matches a ``VIEWPORT`` screen.

    Understands media types, ``not``/``only``, ``and`` and the ``min-``/``max-``
    ``width``/``height`` features; a query with any other feature counts as not matching.
    """
    tokens = tinycss2.parse_component_value_list(query) if isinstance(query, str) else query
    queries = _split_commas(tokens)
    return not tokens or any(_query_applies(q) for q in queries)


def to_px(token) -> float | None:
    """A length in px (em and rem at ``FONT_PX``, vw/vh of ``VIEWPORT``), else None.

    A unitless 0 is 0; percentages are None except 0% (they need the containing box).
    """
    if token.type == "number" and token.value == 0:
        return 0.0
    if token.type == "percentage":
        return 0.0 if token.value == 0 else None
    if token.type == "dimension":
        factor = _ABSOLUTE_PX.get(token.lower_unit)
        return None if factor is None else token.value * factor
    return None


def keyword(value: tuple) -> str | None:
    """The lower-cased keyword of a one-identifier value (``display: none`` -> "none")."""
    if len(value) == 1 and value[0].type == "ident":
        return value[0].lower_value
    return None


def _declarations(parsed) -> list[Declaration]:
    found = []
    for item in parsed:
        if item.type == "declaration":
            value = tuple(t for t in item.value if t.type not in {"whitespace", "comment"})
            found.append(Declaration(item.lower_name, value, bool(item.important)))
    return found


def _rules(nodes, parent: list[list] | None = None) -> list[Rule]:
    """Style rules in source order; ``parent`` is the selector list of an enclosing rule."""
    rules: list[Rule] = []
    for node in nodes:
        if node.type == "qualified-rule":
            selectors = [_nested(s, parent) for s in _split_commas(node.prelude)]
            try:
                for selector in selectors:
                    list(cssselect2.parser.parse(selector))
            except cssselect2.SelectorError:
                continue
            rules.extend(_style_rule(selectors, node.content))
        elif node.type == "at-rule" and node.content is not None and _block_applies(node):
            if parent is None:
                inner = tinycss2.parse_rule_list(
                    node.content, skip_comments=True, skip_whitespace=True
                )
                rules.extend(_rules(inner))
            else:  # an at-rule nested in a style rule holds declarations for that rule
                rules.extend(_style_rule(parent, node.content))
    return rules


def _style_rule(selectors: list[list], content: list) -> list[Rule]:
    """A rule's declarations, then the rules nested in it (CSS Nesting)."""
    body = tinycss2.parse_blocks_contents(content, skip_comments=True, skip_whitespace=True)
    nested = [node for node in body if node.type != "declaration"]
    return [Rule(tuple(selectors), tuple(_declarations(body))), *_rules(nested, selectors)]


def _nested(selector: list, parent: list[list] | None) -> list:
    """A nested selector made whole: ``&`` stands for the parent, else it is a descendant."""
    if parent is None:
        return selector
    outer = ":is(" + ", ".join(tinycss2.serialize(p).strip() for p in parent) + ")"
    pieces = [
        outer if t.type == "literal" and t.value == "&" else tinycss2.serialize([t])
        for t in selector
    ]
    text = "".join(pieces).strip()
    return tinycss2.parse_component_value_list(text if outer in pieces else f"{outer} {text}")


def _block_applies(rule) -> bool:
    """``@supports`` and ``@layer`` blocks apply; ``@media`` ones when the query matches."""
    if rule.lower_at_keyword == "media":
        return media_applies(rule.prelude)
    return rule.lower_at_keyword in {"supports", "layer"}


def _mirror(soup: BeautifulSoup) -> tuple[ET.Element, dict[int, Tag]]:
    """An ElementTree copy of the page for cssselect2, and its elements' tags by ``id``."""
    top = [child for child in soup.children if isinstance(child, Tag)]
    whole = len(top) == 1 and top[0].name == "html"
    root = ET.Element("html", _attributes(top[0]) if whole else {})
    tags = {id(root): top[0]} if whole else {}
    stack = [(root, top[0].children if whole else soup.children)]
    while stack:
        parent, children = stack.pop()
        for child in children:
            if isinstance(child, Tag):
                element = ET.SubElement(parent, child.name, _attributes(child))
                tags[id(element)] = child
                stack.append((element, child.children))
    return root, tags


def _attributes(tag: Tag) -> dict[str, str]:
    return {
        name: " ".join(value) if isinstance(value, list) else str(value)
        for name, value in tag.attrs.items()
    }


def _select(soup: BeautifulSoup, selector: str) -> list[Tag]:
    if not selector or "::" in selector:
        return []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # soupsieve warns about deprecated :contains
            return soup.select(selector)
    except (soupsieve.SelectorSyntaxError, NotImplementedError, ValueError):
        return []


def _split_commas(tokens: list) -> list[list]:
    """Top-level comma-separated parts (commas inside functions are inside their tokens)."""
    parts: list[list] = [[]]
    for token in tokens:
        if token.type == "literal" and token.value == ",":
            parts.append([])
        elif token.type != "comment":
            parts[-1].append(token)
    return [part for part in parts if any(t.type != "whitespace" for t in part)]


def _query_applies(tokens: list) -> bool:
    words = [t.lower_value for t in tokens if t.type == "ident"]
    negated = bool(words) and words[0] == "not"
    media_types = [w for w in words if w not in {"not", "only", "and"}]
    matches = all(w in _SCREEN_TYPES for w in media_types)
    for block in (t for t in tokens if t.type == "() block"):
        matches = matches and _feature_applies(block.content)
    return matches != negated


def _feature_applies(tokens: list) -> bool:
    parts = [t for t in tokens if t.type not in {"whitespace", "comment"}]
    if len(parts) != 3 or parts[0].type != "ident" or getattr(parts[1], "value", None) != ":":
        return False
    name, size = parts[0].lower_value, to_px(parts[2])
    if size is None or name.removeprefix("min-").removeprefix("max-") not in {"width", "height"}:
        return False
    actual = VIEWPORT[0] if name.endswith("width") else VIEWPORT[1]
    if name.startswith("min-"):
        return actual >= size
    if name.startswith("max-"):
        return actual <= size
    return actual == size
