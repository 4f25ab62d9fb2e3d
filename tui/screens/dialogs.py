"""Modal dialogs: confirmation, validated forms, a picker, the help screen."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, ClassVar, Literal

from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.validation import Function, ValidationResult, Validator
from textual.widgets import Button, Input, Label, OptionList, Select, SelectionList, Static
from textual.widgets.option_list import Option
from textual.widgets.selection_list import Selection

from smart_suggest.errors import SmartSuggestError
from smart_suggest.text import printable
from tui.format import lit


class ConfirmDialog(ModalScreen[bool]):
    """Yes / no before something destructive; No is the default."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,n", "answer(False)", "No"),
        Binding("y", "answer(True)", "Yes"),
    ]

    def __init__(self, title: str, message: str | Text, yes_label: str = "Yes") -> None:
        super().__init__()
        self.title_text = title
        self.message = message
        self.yes_label = yes_label

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(Text(self.title_text, style="bold"), classes="dialog-title")
            yield Static(self.message, classes="dialog-body")
            with Horizontal(classes="dialog-buttons"):
                yield Button(f"{self.yes_label} (y)", id="yes", variant="error")
                yield Button("No (n)", id="no", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


# -- forms -------------------------------------------------------------------------------
@dataclass
class FormField:
    name: str
    label: str
    kind: Literal["text", "int", "float", "select"] = "text"
    default: str = ""
    placeholder: str = ""
    options: Sequence[tuple[str, str]] = ()
    minimum: float | None = None
    maximum: float | None = None
    required: bool = True
    validators: list[Validator] = field(default_factory=list)


def _not_blank(value: str) -> bool:
    return bool(value.strip())


SubmitFn = Callable[[dict[str, Any]], Awaitable[Any]]


class FormDialog(ModalScreen[Any]):
    """A validated form. Field errors show as you type; core errors keep the form open.

    ``submit(values)`` does the write (in a worker) and returns the result the dialog is
    dismissed with; a ``SmartSuggestError`` it raises is shown in the form instead.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "submit", "Save"),
    ]

    def __init__(
        self, title: str, fields: Sequence[FormField], submit: SubmitFn, submit_label: str = "Save"
    ) -> None:
        super().__init__()
        self.form_title = title
        self.fields = list(fields)
        self.submit_fn = submit
        self.submit_label = submit_label
        self._busy = False

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog form"):
            yield Label(Text(self.form_title, style="bold"), classes="dialog-title")
            for f in self.fields:
                yield Label(f.label, classes="field-label")
                if f.kind == "select":
                    yield Select(
                        [(p, v) for p, v in f.options],
                        value=f.default if f.default else Select.NULL,
                        allow_blank=not f.default,
                        id=f"field-{f.name}",
                        compact=True,
                    )
                else:
                    yield Input(
                        value=f.default,
                        placeholder=f.placeholder,
                        validators=self._validators(f),
                        valid_empty=not f.required,
                        id=f"field-{f.name}",
                        type="text",
                        compact=True,
                    )
                error = Static("", id=f"error-{f.name}", classes="field-error")
                error.display = False
                yield error
            yield Static("", id="form-error", classes="form-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button(f"{self.submit_label} (^s)", id="submit", variant="primary")
                yield Button("Cancel (esc)", id="cancel")

    def _validators(self, f: FormField) -> list[Validator]:
        validators: list[Validator] = []
        if f.required:
            validators.append(Function(_not_blank, f"{f.label} is required"))
        if f.kind in ("int", "float"):
            # One message per field, saying what is accepted (not one per failed check).
            what = "a whole number" if f.kind == "int" else "a number"
            validators.append(
                Function(partial(_in_range, field=f), f"Enter {what}{_range_text(f)}")
            )
        validators.extend(f.validators)
        return validators

    def on_mount(self) -> None:
        first = self.query("Input, Select").first()
        first.focus()

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        name = (event.input.id or "").removeprefix("field-")
        self._show_field_error(name, event.validation_result)
        self.query_one("#form-error", Static).update("")

    def _show_field_error(self, name: str, result: ValidationResult | None) -> None:
        # The first failure only: "required" already says all there is to say.
        failures = [] if result is None or result.is_valid else result.failure_descriptions
        self._field_error(name, failures[0] if failures else "")

    def _field_error(self, name: str, message: str) -> None:
        """Show (or clear) the message under a field; no blank line when there is none."""
        for box in self.query(f"#error-{name}").results(Static):
            box.update(Text(message, style="bold red"))
            box.display = bool(message)

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        inputs = list(self.query("Input, Select"))
        index = inputs.index(event.input)
        if index + 1 < len(inputs):
            inputs[index + 1].focus()
        else:
            self.action_submit()

    @on(Button.Pressed, "#submit")
    def _submit_pressed(self) -> None:
        self.action_submit()

    @on(Button.Pressed, "#cancel")
    def _cancel_pressed(self) -> None:
        self.action_cancel()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def values(self) -> dict[str, Any] | None:
        """The converted values, or None (with errors shown) when a field is invalid."""
        values: dict[str, Any] = {}
        ok = True
        for f in self.fields:
            if f.kind == "select":
                select = self.query_one(f"#field-{f.name}", Select)
                value = None if select.value is Select.NULL else select.value
                if value is None and f.required:
                    self._field_error(f.name, f"choose a value for {f.label}")
                    ok = False
                values[f.name] = value
                continue
            box = self.query_one(f"#field-{f.name}", Input)
            result = box.validate(box.value)
            self._show_field_error(f.name, result)
            if result is not None and not result.is_valid:
                ok = False
                continue
            raw = box.value
            if f.kind == "int":
                values[f.name] = int(float(raw)) if raw.strip() else None
            elif f.kind == "float":
                values[f.name] = float(raw) if raw.strip() else None
            else:
                values[f.name] = raw
        return values if ok else None

    def action_submit(self) -> None:
        if self._busy:
            return
        values = self.values()
        if values is None:
            self.query_one("#form-error", Static).update(
                Text("Fix the fields marked above.", style="bold red")
            )
            return
        self._busy = True
        self.query_one("#submit", Button).loading = True
        self.run_worker(self._run_submit(values), group="form", exit_on_error=False)

    async def _run_submit(self, values: dict[str, Any]) -> None:
        try:
            result = await self.submit_fn(values)
        except SmartSuggestError as exc:
            self.query_one("#form-error", Static).update(
                Text(printable(str(exc)), style="bold red")
            )
            return
        except ValueError as exc:
            self.query_one("#form-error", Static).update(
                Text(printable(str(exc)), style="bold red")
            )
            return
        finally:
            self._busy = False
            self.query_one("#submit", Button).loading = False
        self.dismiss(result)


def _in_range(value: str, field: FormField) -> bool:
    """A number of the field's kind within its bounds (blank is the "required" check's)."""
    if not value.strip():
        return True
    try:
        number = float(value)
    except ValueError:
        return False
    if not math.isfinite(number) or (field.kind == "int" and not number.is_integer()):
        return False
    if field.minimum is not None and number < field.minimum:
        return False
    return field.maximum is None or number <= field.maximum


def _range_text(f: FormField) -> str:
    def fmt(x: float) -> str:
        return f"{x:g}"

    if f.minimum is not None and f.maximum is not None:
        return f" from {fmt(f.minimum)} to {fmt(f.maximum)}"
    if f.minimum is not None:
        return f" of at least {fmt(f.minimum)}"
    if f.maximum is not None:
        return f" of at most {fmt(f.maximum)}"
    return ""


# -- picker ------------------------------------------------------------------------------
class PickDialog(ModalScreen[Any]):
    """Choose one of a few options (e.g. the experiment to link); type to filter them.

    ``current`` is the index of the option in use now: it starts highlighted.
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(
        self, title: str, choices: Sequence[tuple[Text | str, Any]], current: int | None = None
    ) -> None:
        super().__init__()
        self.pick_title = title
        self.choices = list(choices)
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(Text(self.pick_title, style="bold"), classes="dialog-title")
            yield Input(placeholder="type to filter", id="pick-filter", compact=True)
            yield OptionList(*self._options(""), id="pick")
            yield Label("↓ to the list · enter choose · esc cancel", classes="dialog-hint")

    def _options(self, text: str) -> list[Option]:
        needle = text.casefold()
        return [
            Option(label if isinstance(label, Text) else lit(label), id=str(i))
            for i, (label, _) in enumerate(self.choices)
            if needle in (label.plain if isinstance(label, Text) else label).casefold()
        ]

    def on_mount(self) -> None:
        options = self.query_one("#pick", OptionList)
        if self.current is not None:
            options.highlighted = self.current
        options.focus()

    @on(Input.Changed, "#pick-filter")
    def _filter(self, event: Input.Changed) -> None:
        options = self.query_one("#pick", OptionList)
        options.clear_options()
        options.add_options(self._options(event.value))
        if options.option_count:
            options.highlighted = 0

    @on(Input.Submitted, "#pick-filter")
    def _filter_done(self) -> None:
        options = self.query_one("#pick", OptionList)
        if options.option_count == 1:
            options.highlighted = 0
            options.action_select()
        else:
            options.focus()

    def on_key(self, event: Any) -> None:
        if event.key == "down" and self.focused is self.query_one("#pick-filter"):
            self.query_one("#pick", OptionList).focus()
            event.stop()
        elif event.is_printable and event.character and getattr(self.focused, "id", "") == "pick":
            # Typing in the list goes to the filter, as in a search box.
            box = self.query_one("#pick-filter", Input)
            box.focus()
            box.insert_text_at_cursor(event.character)
            event.stop()

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        index = int(event.option.id or 0)
        self.dismiss(self.choices[index][1])

    def action_cancel(self) -> None:
        self.dismiss(_CANCELLED)


#: What ``PickDialog`` returns when the user cancels (None may be a valid choice).
_CANCELLED = object()
CANCELLED = _CANCELLED


# -- checklist ---------------------------------------------------------------------------
class ChecklistDialog(ModalScreen[list[Any] | None]):
    """Tick several options (space), in their order; enter saves, esc cancels."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("enter,ctrl+s", "save", "Save", priority=True),
    ]

    def __init__(
        self,
        title: str,
        options: Sequence[tuple[str, Any, bool]],
        *,
        minimum: int = 0,
        maximum: int | None = None,
        hint: str = "",
    ) -> None:
        super().__init__()
        self.check_title = title
        self.options = list(options)
        self.minimum = minimum
        self.maximum = maximum
        self.hint = hint

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(Text(self.check_title, style="bold"), classes="dialog-title")
            yield SelectionList[int](
                *[
                    Selection(lit(label), i, picked)
                    for i, (label, _, picked) in enumerate(self.options)
                ],
                id="checklist",
            )
            yield Static("", id="checklist-error", classes="form-error")
            yield Label(self.hint, classes="dialog-hint")

    def action_save(self) -> None:
        picked = sorted(self.query_one("#checklist", SelectionList).selected)
        if len(picked) < self.minimum:
            self._error(f"choose at least {self.minimum}")
            return
        if self.maximum is not None and len(picked) > self.maximum:
            self._error(f"choose at most {self.maximum}")
            return
        self.dismiss([self.options[i][1] for i in picked])

    def _error(self, message: str) -> None:
        self.query_one("#checklist-error", Static).update(Text(message, style="bold red"))

    def action_cancel(self) -> None:
        self.dismiss(None)


# -- help --------------------------------------------------------------------------------
class HelpScreen(ModalScreen[None]):
    """The keys of the screen it was opened from, and the keys that work everywhere."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,f1,question_mark", "close", "Close")]

    def __init__(
        self, title: str, about: str, sections: Sequence[tuple[str, list[tuple[str, str]]]]
    ):
        super().__init__()
        self.help_title = title
        self.about = about
        self.sections = sections

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog help", id="help-body"):
            yield Label(Text(f"Help: {self.help_title}", style="bold"), classes="dialog-title")
            if self.about:
                yield Static(Text(self.about), classes="help-about")
            for heading, keys in self.sections:
                table = Table(
                    title=heading,
                    title_justify="left",
                    title_style="bold",
                    show_header=False,
                    box=None,
                    padding=(0, 1),
                    expand=True,
                )
                table.add_column("key", style="bold", no_wrap=True, min_width=10)
                table.add_column("action", ratio=1)
                for key, text in keys:
                    table.add_row(key, Text(text))
                yield Static(table, classes="help-section")
            yield Label("esc / q / F1 close", classes="dialog-hint")

    def action_close(self) -> None:
        self.dismiss(None)
