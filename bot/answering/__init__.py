"""The answer path, free of Slack: retrieve passages, prompt, generate, validate citations."""

from bot.answering.answerer import Answer, Answerer, Citation, Delta, QuestionError
from bot.answering.prompt import Turn

__all__ = ["Answer", "Answerer", "Citation", "Delta", "QuestionError", "Turn"]
