"""A stand-in for verl's LLM server client in the dry run: the policy behind an OpenAI-compatible server.

verl's agent loops call `generate(request_id, *, prompt_ids, sampling_params) -> TokenOutput`, token
ids in and out, against the vLLM servers the trainer starts on its GPUs. On a CPU machine there are
none, so the dry run hands the agent-loop worker this client instead: the prompt ids are decoded to
text and sent to `/v1/completions` (vLLM, SGLang and `transformers serve` all serve it), and the
reply is encoded back with the policy's tokenizer, ending with EOS when the model stopped by itself.
No log-probs: the dry run stops before the update that would use them.
"""

from __future__ import annotations

from typing import Any

from verl.workers.rollout.replica import TokenOutput


class OpenAICompletionsPolicy:
    """Picklable (it is sent to a Ray actor): the HTTP client and the tokenizer are made on first use."""

    def __init__(
        self,
        base_url: str,
        model: str,
        tokenizer_path: str,
        *,
        max_tokens: int,
        timeout: float = 300.0,
        max_retries: int = 3,
    ):
        self.base_url = base_url
        self.model = model
        self.tokenizer_path = tokenizer_path
        self.max_tokens = max_tokens  # verl's default: rollout.response_length
        self.timeout = timeout
        self.max_retries = max_retries
        self._client: Any = None
        self._tokenizer: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_client": None, "_tokenizer": None}

    async def generate(
        self, request_id: str, *, prompt_ids: list[int], sampling_params: dict[str, Any], **_: Any
    ) -> TokenOutput:
        import openai
        from verl.utils import hf_tokenizer

        if self._client is None:
            self._client = openai.AsyncOpenAI(
                base_url=self.base_url, api_key="EMPTY", timeout=self.timeout, max_retries=self.max_retries
            )
            self._tokenizer = hf_tokenizer(self.tokenizer_path)
        tokenizer = self._tokenizer
        stop = sampling_params.get("stop")
        completion = await self._client.completions.create(
            model=self.model,
            prompt=tokenizer.decode(prompt_ids, skip_special_tokens=False),
            max_tokens=int(sampling_params.get("max_tokens", self.max_tokens)),
            temperature=float(sampling_params.get("temperature", 1.0)),
            top_p=float(sampling_params.get("top_p", 1.0)),
            stop=list(stop) if stop else openai.omit,
            extra_headers={"X-Request-Id": request_id},
        )
        choice = completion.choices[0]
        token_ids = tokenizer.encode(choice.text, add_special_tokens=False)
        if choice.finish_reason == "stop" and not stop:
            token_ids.append(tokenizer.eos_token_id)
        return TokenOutput(token_ids=token_ids, log_probs=None, stop_reason="completed")
