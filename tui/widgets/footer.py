"""The footer: the keys of the screen, always with Help and Quit, fitted to the width."""

from __future__ import annotations

from typing import Any, ClassVar

from textual import events
from textual.app import ComposeResult
from textual.widgets import Footer
from textual.widgets._footer import FooterKey


class KeyFooter(Footer):
    """Textual's footer cuts whatever does not fit at the right, which is where the app's
    own keys (Help, Quit) sit. This one keeps those, then fills the width with the screen's
    keys in their order of importance (the order of BINDINGS), and shows the entries it
    keeps in their usual order. Below 100 columns it turns compact and leaves out the
    palette hint (ctrl+p still works; F1 lists it)."""

    #: Always shown, whatever the width.
    KEEP: ClassVar[tuple[str, ...]] = ("help", "quit")
    COMPACT_BELOW = 100

    def __init__(self) -> None:
        super().__init__()
        self._laid_out_for = 0
        #: What the composed keys show (see _signature); None before the first compose.
        self._composed: tuple[Any, ...] | None = None

    def on_resize(self, event: events.Resize) -> None:
        width = event.size.width
        if width != self._laid_out_for:
            self._laid_out_for = width
            self.compact = width < self.COMPACT_BELOW
            self.show_command_palette = width >= self.COMPACT_BELOW
            self.call_after_refresh(self._recompose_if_changed)

    async def _recompose_if_changed(self) -> None:
        # Each compose mounts and styles a dozen keys (~15 ms). On a screen's first show
        # the keys are composed once the bindings are known, for the width they will have:
        # the first resize then changes nothing.
        if self._composed is not None and self._signature() != self._composed:
            await self.recompose()

    def _signature(self) -> tuple[Any, ...]:
        shown = tuple(
            (b.key, b.action, b.description, enabled, tooltip)
            for b, enabled, tooltip in self.visible_bindings()
        )
        width = self.size.width or self.app.size.width  # the width visible_bindings used
        return (shown, self.compact, self.show_command_palette, width)

    def bindings_changed(self, screen: Any) -> None:
        # Textual recomposes the footer (a dozen new widgets to style and lay out) whenever
        # the bindings may have changed: on every screen switch and focus change. Mostly
        # they have not; then the footer stays as it is.
        self._bindings_ready = True
        unchanged = self._composed is not None and screen is self.screen and self.is_attached
        if unchanged and self._signature() == self._composed:
            return
        super().bindings_changed(screen)

    def _cost(self, key: str, description: str) -> int:
        return len(key) + len(description) + (2 if self.compact else 3)

    def visible_bindings(self) -> list[tuple[Any, bool, str]]:
        """(binding, enabled, tooltip) of the keys shown at the current width, in order."""
        seen: dict[str, tuple[Any, bool, str]] = {}
        for _node, binding, enabled, tooltip in self.screen.active_bindings.values():
            if binding.show:
                seen.setdefault(binding.action, (binding, enabled, tooltip))
        entries = list(seen.values())
        width = self.size.width or self.app.size.width
        budget = width - (14 if self.show_command_palette else 0) - 1
        cost = {
            id(b): self._cost(self.app.get_key_display(b), b.description) for b, _, _ in entries
        }
        keep = {id(b) for b, _, _ in entries if b.action in self.KEEP}
        budget -= sum(cost[k] for k in keep)
        for binding, _, _ in entries:
            if id(binding) in keep:
                continue
            if cost[id(binding)] <= budget:
                keep.add(id(binding))
                budget -= cost[id(binding)]
        return [e for e in entries if id(e[0]) in keep]

    def compose(self) -> ComposeResult:
        if not self._bindings_ready:
            return
        shown = self.visible_bindings()
        self._composed = self._signature()
        self.styles.grid_size_columns = len(shown)
        for binding, enabled, tooltip in shown:
            yield FooterKey(
                binding.key,
                self.app.get_key_display(binding),
                binding.description,
                binding.action,
                disabled=not enabled,
                tooltip=tooltip,
            ).data_bind(compact=Footer.compact)
        if self.show_command_palette and self.app.ENABLE_COMMAND_PALETTE:
            try:
                _node, binding, enabled, tooltip = self.screen.active_bindings[
                    self.app.COMMAND_PALETTE_BINDING
                ]
            except KeyError:
                return
            yield FooterKey(
                binding.key,
                self.app.get_key_display(binding),
                binding.description,
                binding.action,
                classes="-command-palette",
                disabled=not enabled,
                tooltip=binding.tooltip or binding.description,
            )
