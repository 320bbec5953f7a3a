"""Web front ends (Gradio chat, embed widget, JSON API)."""
