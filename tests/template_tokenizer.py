"""A tokenizer reduced to its templates, for the dialect and tool-loop tests."""

from __future__ import annotations

from typing import Any

from transformers.utils.chat_parsing.response_parser import parse_response
from transformers.utils.chat_template_utils import render_jinja_template

# The embedded SmolLM2-135M-Instruct's chat template, as shipped (with real newlines in its strings).
SMOLLM2_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


class TemplateTokenizer:
    """A tokenizer reduced to its templates, rendered and parsed by transformers' own functions."""

    def __init__(self, template: str, response_template: dict[str, Any] | None = None) -> None:
        self.chat_template = template
        self.response_template = response_template

    def apply_chat_template(
        self,
        messages: list[dict[str, Any]],
        tools: Any = None,
        tokenize: bool = False,
        add_generation_prompt: bool = True,
    ) -> str:
        # transformers annotates it as returning str; it returns (rendered, generation indices).
        rendered, _ = render_jinja_template(  # type: ignore[str-unpack]
            [messages],
            tools=tools,
            chat_template=self.chat_template,
            add_generation_prompt=add_generation_prompt,
        )
        return rendered[0]

    def parse_response(self, text: str, prefix: str = "") -> dict[str, Any]:
        assert self.response_template is not None
        return parse_response(text, self.response_template, prefix=prefix)
