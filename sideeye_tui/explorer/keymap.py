"""Every key binding of the explorer, in one registry, each with an id users can remap.

The registry feeds the screens' BINDINGS, the help screen and the user's keymap file
(~/.config/sideeye-tui/keymap.toml), so a binding can never exist in one and be missing
from another. A keymap file maps binding ids to keys:

    # ~/.config/sideeye-tui/keymap.toml
    "goroutines.filter" = "ctrl+f"
    "flame.zoom" = "z,Z"
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from textual.binding import Binding, BindingType

from ..errors import SideEyeError


@dataclass(frozen=True)
class Key:
    id: str  # scope.name: what a keymap file names
    keys: str  # Textual key spec, comma-separated alternatives
    action: str
    description: str
    show: bool = True  # in the footer


# scope -> keys; the scope is the screen or pane they work in.
REGISTRY: dict[str, tuple[Key, ...]] = {
    "app": (
        Key("app.help", "question_mark", "help", "Help: every key"),
        Key("app.palette", "colon", "command_palette", "Command palette", show=False),
        Key("app.quit", "q", "quit_top", "Quit (at the top level)"),
    ),
    "browser": (
        Key("browser.goroutines", "1", "show_tab('goroutines')", "Goroutines", show=False),
        Key("browser.flame", "2", "show_tab('flame')", "Flame graph", show=False),
        Key("browser.tables", "3", "show_tab('tables')", "Tables", show=False),
        Key("browser.sql", "4", "show_tab('sql')", "SQL console", show=False),
        Key("browser.snapshots", "5", "show_tab('snapshots')", "Snapshots", show=False),
        Key("browser.diff", "6", "show_tab('diff')", "Diff", show=False),
        Key("browser.prev_snapshot", "left_square_bracket", "snapshot(-1)", "Previous snapshot"),
        Key("browser.next_snapshot", "right_square_bracket", "snapshot(1)", "Next snapshot"),
        Key("browser.snapshot", "s", "take_snapshot", "Snapshot again"),
        Key("browser.back", "escape", "back", "Back one level", show=False),
    ),
    "goroutines": (
        Key("goroutines.filter", "slash", "focus_filter", "Filter"),
        Key("goroutines.sort", "o", "cycle_sort", "Sort"),
        Key("goroutines.process", "p", "cycle_process", "Process"),
        Key("goroutines.down", "j", "cursor_down", "Down", show=False),
        Key("goroutines.up", "k", "cursor_up", "Up", show=False),
        Key("goroutines.first", "g", "first", "First", show=False),
        Key("goroutines.last", "G", "last", "Last", show=False),
    ),
    "detail": (
        Key("detail.back", "escape", "back", "Back"),
        Key("detail.down", "j", "frame_down", "Next frame", show=False),
        Key("detail.up", "k", "frame_up", "Previous frame", show=False),
        Key("detail.variables", "v", "focus_variables", "Variables"),
        Key("detail.frames", "f", "focus_frames", "Frames"),
        Key("detail.wrappers", "w", "toggle_wrappers", "Wrapper frames", show=False),
    ),
    "flame": (
        Key("flame.parent", "up,k", "move('up')", "Parent"),
        Key("flame.child", "down,j", "move('down')", "Child", show=False),
        Key("flame.prev", "left,h", "move('left')", "Previous sibling", show=False),
        Key("flame.next", "right,l", "move('right')", "Next sibling", show=False),
        Key("flame.select", "enter", "select_node", "Filter goroutines"),
        Key("flame.flip", "f", "flip", "Icicle/flame"),
        Key("flame.process", "p", "cycle_process", "Process"),
    ),
    "snapshots": (
        Key("snapshots.open", "enter", "open_snapshot", "Open"),
        Key("snapshots.mark", "space", "mark", "Mark for diff"),
        Key("snapshots.diff", "d", "diff", "Diff marked/previous"),
    ),
    "picker": (
        Key("picker.mark", "space", "mark", "Mark"),
        Key("picker.snapshot", "s,enter", "snapshot", "Snapshot"),
        Key("picker.filter", "slash", "focus_filter", "Filter"),
        Key("picker.refresh", "r", "refresh", "Refresh"),
        Key("picker.down", "j", "cursor_down", "Down", show=False),
        Key("picker.up", "k", "cursor_up", "Up", show=False),
    ),
}


def bindings(scope: str) -> list[BindingType]:
    return [Binding(k.keys, k.action, k.description, show=k.show, id=k.id) for k in REGISTRY[scope]]


def all_keys() -> list[Key]:
    return [k for keys in REGISTRY.values() for k in keys]


def default_keymap_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "sideeye-tui" / "keymap.toml"


def load_keymap(path: Path | None = None) -> dict[str, str]:
    """The user's remapped keys (id -> keys); {} when there is no file.

    A file that is not TOML, or names an unknown id, is a one-line error: a typo in a
    keymap should be seen, not silently ignored.
    """
    path = path or default_keymap_path()
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise SideEyeError(f"{path}: {e}") from e
    known = {k.id for k in all_keys()}
    out: dict[str, str] = {}
    for key, value in data.items():
        if key not in known:
            raise SideEyeError(f"{path}: unknown binding id {key!r}")
        if not isinstance(value, str) or not value.strip():
            raise SideEyeError(f'{path}: {key} must be a key name such as "ctrl+f"')
        out[key] = value
    return out


def effective_keys(key: Key, keymap: dict[str, str]) -> str:
    return keymap.get(key.id, key.keys)
