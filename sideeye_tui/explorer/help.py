"""`?`: every key of the registry with its id (for the keymap file), and the command
palette's own commands."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from . import keymap

_KEY_NAMES = {
    "left_square_bracket": "[",
    "right_square_bracket": "]",
    "question_mark": "?",
    "colon": ":",
    "slash": "/",
    "escape": "esc",
}


def help_table(user_keymap: dict[str, str]) -> Table:
    table = Table(box=None, pad_edge=False, expand=False, show_header=True)
    table.add_column("where", style="dim")
    table.add_column("key", style="bold cyan")
    table.add_column("does")
    table.add_column("id (keymap.toml)", style="dim")
    for scope, keys in keymap.REGISTRY.items():
        for k in keys:
            names = [name.strip() for name in keymap.effective_keys(k, user_keymap).split(",")]
            shown = ", ".join(_KEY_NAMES.get(name, name) for name in names)
            table.add_row(scope, shown, k.description, k.id)
    table.add_row("app", "ctrl+p", "Command palette", "")
    return table


class HelpScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape,q,question_mark", "dismiss", "Close", id="help.close"),
    ]

    def __init__(self, user_keymap: dict[str, str]) -> None:
        super().__init__()
        self.user_keymap = user_keymap

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Static(
                "sideeye-tui keys · Esc closes · remap them by id in"
                " ~/.config/sideeye-tui/keymap.toml",
                id="help-title",
            )
            yield Static(help_table(self.user_keymap), id="help-keys")

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)


class ExplorerCommands(Provider):
    """The palette's commands: every action of the registry that makes sense anywhere."""

    COMMANDS = (
        ("Goroutines", "show_tab('goroutines')"),
        ("Flame graph", "show_tab('flame')"),
        ("Tables", "show_tab('tables')"),
        ("SQL console", "show_tab('sql')"),
        ("Snapshots", "show_tab('snapshots')"),
        ("Diff with the previous snapshot", "diff_previous"),
        ("Previous snapshot", "snapshot(-1)"),
        ("Next snapshot", "snapshot(1)"),
        ("Take a snapshot of the same processes", "take_snapshot"),
        ("Help: every key", "help"),
        ("Quit", "quit"),
    )

    def _run(self, action: str) -> Callable[[], object]:
        return partial(self.app.run_action, action, self.screen)

    async def discover(self) -> Hits:
        for name, action in self.COMMANDS:
            yield DiscoveryHit(name, self._run(action))

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, action in self.COMMANDS:
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), self._run(action))
