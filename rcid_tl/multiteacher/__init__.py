"""Distillation from several heterogeneous teachers: tokenizer/time/layer/head alignment, projectors, fusion and routing, structural KV loss."""
