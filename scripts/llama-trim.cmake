# Passed to llama-cpp-python's build as CMAKE_PROJECT_INCLUDE (scripts/llama_build.py), so CMake
# reads it at the end of every project() call, before llama.cpp's own options are defined.
#
# llama-cpp-python forces LLAMA_BUILD_COMMON on in the cache, but nothing Kabar loads needs
# llama.cpp's "common" library (argument parsing, chat templates, downloads, an HTTP client):
# the Python package loads libllama and libggml only. A normal variable shadows the cached
# one (policy CMP0126), so llama.cpp skips it, and with it cpp-httplib: about 60% of the
# compile time.
set(LLAMA_BUILD_COMMON OFF)
