using AttentionSharp.Nn;

namespace AttentionSharp.Models;

/// <summary>
/// A named level in a parameter hierarchy that holds no logic of its own, so a model can reproduce a checkpoint's
/// dotted names (BERT's "encoder.layer.0.attention.self.query") while its forward pass stays in one class.
/// </summary>
internal sealed class ModuleGroup : Module
{
    public T Add<T>(string name, T module) where T : Module => RegisterModule(name, module);

    public Tensor AddParameter(string name, Tensor tensor) => RegisterParameter(name, tensor);
}
