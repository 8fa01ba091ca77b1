"""LoRA fine-tuning to the organisation's tone: data preparation, training, tone evaluation."""
