"""Downstream protocols of SPEC section 8: linear probing, few-shot fine-tuning, evaluation, robustness."""
