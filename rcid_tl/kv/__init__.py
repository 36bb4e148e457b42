"""KV-cache distillation from one teacher: K/V capture on hook points, KV losses, attention weighting, CKA and CODI
terms, teacher KV compression."""
