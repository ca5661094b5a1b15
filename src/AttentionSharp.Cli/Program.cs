using System.CommandLine;

var root = new RootCommand("attn: the Transformer from scratch in C#.");
return root.Parse(args).Invoke();
