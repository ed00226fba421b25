"""A chat template rendered from its Jinja text alone, without a transformers tokenizer.

Engines that read the template from the model file (llama.cpp reads ``tokenizer.chat_template`` from a
GGUF file's metadata) wrap it in :class:`JinjaChatTemplate`, which renders it the way transformers'
``apply_chat_template`` does: the same sandboxed environment (``ImmutableSandboxedEnvironment`` with
``trim_blocks`` and ``lstrip_blocks``), the same extra names (``tojson`` without HTML escaping,
``raise_exception``, ``strftime_now``, a safe ``dict`` and ``namespace``) and the special tokens
(``bos_token``, ``eos_token``, ...) as variables. Templates come from downloaded files, so they are
untrusted code: the sandbox keeps them away from Python internals.
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import lru_cache
from typing import Any

import jinja2
import jinja2.ext
import jinja2.nodes
import jinja2.parser
import jinja2.utils
from jinja2.sandbox import ImmutableSandboxedEnvironment


def _raise_exception(message: str) -> None:
    raise jinja2.exceptions.TemplateError(message)


def _tojson(
    value: Any,
    ensure_ascii: bool = False,
    indent: int | None = None,
    separators: tuple[str, str] | None = None,
    sort_keys: bool = False,
) -> str:
    # Jinja's own tojson escapes HTML characters, which a prompt must not have.
    return json.dumps(
        value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
    )


def _strftime_now(format: str) -> str:
    return datetime.now().strftime(format)


class _TemplateDict:
    """``dict`` for templates: builds dicts, but offers no attribute to climb out of the sandbox."""

    def __call__(self, *args: Any, **kwargs: Any) -> dict[Any, Any]:
        return dict(*args, **kwargs)

    def fromkeys(self, *args: Any, **kwargs: Any) -> dict[Any, Any]:
        return dict.fromkeys(*args, **kwargs)


class _TemplateNamespace(jinja2.utils.Namespace):
    """``namespace`` for templates: refuses underscore names (the way to CPython internals)."""

    def __init__(*args: Any, **kwargs: Any) -> None:  # same signature trick as jinja2's Namespace
        self, rest = args[0], args[1:]
        attrs = dict(*rest, **kwargs)
        for name in attrs:
            _TemplateNamespace._check_name(name)
        jinja2.utils.Namespace.__init__(self, attrs)

    def __setitem__(self, name: str, value: Any) -> None:
        _TemplateNamespace._check_name(name)
        jinja2.utils.Namespace.__setitem__(self, name, value)

    @staticmethod
    def _check_name(name: object) -> None:
        if isinstance(name, str) and name.startswith("_"):
            raise jinja2.exceptions.SecurityError(
                f"Chat templates cannot store underscore-prefixed attributes on a namespace, got {name!r}."
            )


class _GenerationBlock(jinja2.ext.Extension):
    """Accepts ``{% generation %}...{% endgeneration %}`` (transformers' assistant-mask marker) as plain text."""

    tags = {"generation"}  # noqa: RUF012 - jinja2's declared class attribute

    def parse(self, parser: jinja2.parser.Parser) -> jinja2.nodes.Node:
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return jinja2.nodes.Scope(body).set_lineno(lineno)


@lru_cache(maxsize=8)
def compile_template(text: str) -> jinja2.Template:
    """Compile a chat template in the sandbox transformers uses (cached: templates are reused).

    Raises:
        jinja2.TemplateError: If the text is not a valid template.
    """
    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[_GenerationBlock, jinja2.ext.loopcontrols]
    )
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    env.globals["dict"] = _TemplateDict()
    env.globals["namespace"] = _TemplateNamespace
    return env.from_string(text)


class JinjaChatTemplate:
    """A :class:`~workbench.dialects.template.ChatTemplateSource` made from a template's text.

    Args:
        chat_template: The Jinja text, or None when the model has none.
        special_tokens: Variables the template may read, by name (``bos_token``, ``eos_token``, ...).
        control_texts: The texts of the model's control tokens (``<|im_start|>``, ...), which a message's
            content may not write (see :mod:`workbench.models.prompt_literals`).
    """

    def __init__(
        self,
        chat_template: str | None,
        special_tokens: dict[str, str] | None = None,
        control_texts: tuple[str, ...] = (),
    ) -> None:
        self.chat_template = chat_template
        self.special_tokens = dict(special_tokens or {})
        self.control_texts = control_texts

    def apply_chat_template(
        self,
        conversation: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        *,
        tokenize: bool = False,
        add_generation_prompt: bool = True,
    ) -> str:
        """Render a conversation (OpenAI-style dicts) into the prompt text.

        Raises:
            ValueError: If ``tokenize`` is asked for (this object has no tokenizer) or there is no template.
            jinja2.TemplateError: If the template rejects the conversation (``raise_exception``).
        """
        if tokenize:
            raise ValueError("JinjaChatTemplate renders text only; tokenize with the engine.")
        if not self.chat_template:
            raise ValueError("This model has no chat template.")
        template = compile_template(self.chat_template)
        return template.render(
            messages=[dict(message) for message in conversation],
            tools=tools,
            add_generation_prompt=add_generation_prompt,
            **self.special_tokens,
        )

    def __repr__(self) -> str:
        size = len(self.chat_template or "")
        return f"JinjaChatTemplate({size} characters, tokens {sorted(self.special_tokens)})"
