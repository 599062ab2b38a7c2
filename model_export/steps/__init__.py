"""Operations on an exported model, each the subcommand of its name.

``verify``, ``optimize``, ``quantize``, ``prune`` and ``publish``; a step that writes a new
model writes it as a variant (``variants``: the parent's card plus one more entry in
``variants``). Helpers are named for what they own: ``transformer_fusions`` (optimize),
``buckets`` (publish's uploads).
"""
