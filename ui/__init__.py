"""The Gradio chat app over the Python API."""
