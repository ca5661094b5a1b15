using Google.Protobuf;

namespace AttentionSharp.IO.Onnx;

/// <summary>
/// One protobuf message being written, field by field, in the wire format (varints, fixed32 floats, length-delimited
/// strings, bytes and sub-messages). The ONNX messages are written with it directly from the field numbers of onnx.proto,
/// so no generated code is needed. Sub-messages are serialised first and embedded as bytes.
/// </summary>
internal sealed class ProtoWriter
{
    readonly MemoryStream _buffer = new();
    readonly CodedOutputStream _out;

    public ProtoWriter() => _out = new CodedOutputStream(_buffer, leaveOpen: true);

    public ProtoWriter Int64(int field, long value)
    {
        _out.WriteTag(field, WireFormat.WireType.Varint);
        _out.WriteInt64(value);
        return this;
    }

    public ProtoWriter Int32(int field, int value)
    {
        _out.WriteTag(field, WireFormat.WireType.Varint);
        _out.WriteInt32(value);
        return this;
    }

    public ProtoWriter Float(int field, float value)
    {
        _out.WriteTag(field, WireFormat.WireType.Fixed32);
        _out.WriteFloat(value);
        return this;
    }

    public ProtoWriter String(int field, string value)
    {
        _out.WriteTag(field, WireFormat.WireType.LengthDelimited);
        _out.WriteString(value);
        return this;
    }

    public ProtoWriter Bytes(int field, byte[] value)
    {
        _out.WriteTag(field, WireFormat.WireType.LengthDelimited);
        _out.WriteBytes(UnsafeByteOperations.UnsafeWrap(value));
        return this;
    }

    public ProtoWriter Message(int field, ProtoWriter message) => Bytes(field, message.ToArray());

    /// <summary>A repeated int64 field, packed (proto3's encoding for repeated scalars).</summary>
    public ProtoWriter PackedInt64(int field, IReadOnlyList<long> values)
    {
        var packed = new ProtoWriter();
        foreach (var v in values) packed._out.WriteInt64(v);
        return Bytes(field, packed.ToArray());
    }

    public byte[] ToArray()
    {
        _out.Flush();
        return _buffer.ToArray();
    }
}
