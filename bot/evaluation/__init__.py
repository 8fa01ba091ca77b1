"""Evaluations a user can run on their own machine: question sets and the answer-quality eval."""
