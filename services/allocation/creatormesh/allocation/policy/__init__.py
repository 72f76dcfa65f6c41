"""The DPO-trained allocation policy: prompt and answer format, the fairness
preference dataset, a tiny offline model for tests, training (TRL DPOTrainer +
PEFT LoRA), evaluation, and serving with the engine as validator.

Only :mod:`.prompts`, :mod:`.dataset` and :mod:`.serve` are needed to serve;
``trl``, ``peft`` and ``datasets`` (the optional ``train`` extra) are imported
inside the training and evaluation functions only.
"""
