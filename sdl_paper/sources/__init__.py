"""Data sources: synthetic ground truth under the linear representation hypothesis (ground_truth).
"""
