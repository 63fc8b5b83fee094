"""llama.cpp (llama-cpp-python) as the tests and benchmarks run it: weights kept in the file's layout.

llama.cpp repacks quantized weights at load time into layouts for the matrix units it finds on the CPU.
On CPUs with AMX (Intel Sapphire Rapids and later) its AMX kernels crash in the first matrix product
(a segfault in ggml_backend_amx_mul_mat, llama.cpp issue 20824, not fixed upstream), for Q4_K, Q4_1 and
Q8_0 weights alike. With the model's `use_extra_bufts` off, llama.cpp computes on the weights as the file
holds them, which every CPU runs (llama.cpp's own server calls this `--no-repack`).

    plain_weight_layouts()                               # then llama_cpp.Llama(...) in this process
    python -m tests.llamacpp --model m.gguf --port ...   # llama_cpp.server, the same way
"""

import runpy


def plain_weight_layouts() -> None:
    """Every llama_cpp.Llama loaded in this process from now on keeps its weights as the file holds them."""
    import llama_cpp
    from llama_cpp import llama_cpp as bindings  # what llama_cpp.Llama reads its default parameters from

    default = bindings.llama_model_default_params
    if getattr(default, "plain_layouts", False):
        return

    def params():
        model_params = default()
        model_params.use_extra_bufts = False
        return model_params

    params.plain_layouts = True
    bindings.llama_model_default_params = llama_cpp.llama_model_default_params = params  # and the low-level API


if __name__ == "__main__":
    plain_weight_layouts()
    runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)
