namespace AttentionSharp.Training;

/// <summary>
/// Each task's defaults, per network: the options a run takes unless the command line says otherwise. They were chosen
/// to do well within each task's time limit on two cores (README). Fields a task has no use for stay null, so that
/// giving them is refused by name.
/// </summary>
public static class TaskPresets
{
    /// <summary>The tasks, in the order the help lists them.</summary>
    public static IReadOnlyList<string> Tasks { get; } = ["gpt", "mlm", "pos", "fashion", "g2p"];

    /// <summary>The networks a task can train.</summary>
    public static IReadOnlyList<string> ModelsOf(string task) => task switch
    {
        "gpt" or "mlm" => ["transformer"],
        "pos" or "fashion" or "g2p" => ["transformer", "lstm", "gru", "rnn"],
        _ => throw UnknownTask(task),
    };

    /// <summary>The preset of <paramref name="task"/> for <paramref name="model"/>; both are checked.</summary>
    public static TrainOptions For(string task, string model)
    {
        var models = ModelsOf(task);
        if (!models.Contains(model))
            throw new ArgumentException(
                $"--model '{model}' is not available for --task {task}; use {string.Join(", ", models)}.");
        bool transformer = model == "transformer";
#pragma warning disable format // the presets read as a table, a task to a block
        // The Transformers take any positional encoding and attention pattern; the recurrent models read in order.
        var common = new TrainOptions
        {
            Task = task, Model = model, Beta2 = 0.999f,
            Positions = !transformer ? null
                : task == "g2p" ? Nn.PositionalEncodingKind.Sinusoidal : Nn.PositionalEncodingKind.Learned,
            Attention = transformer ? Nn.AttentionPattern.Full : null,
            WordDropout = task == "pos" ? 0f : null, RareWordDropout = task == "pos" ? 0f : null,
            TrainFraction = task == "pos" ? 1.0 : null,
            Beam = task == "g2p" ? 5 : null, LengthPenalty = task == "g2p" ? 0f : null, Ensemble = task == "g2p" ? 1 : null,
            Patch = task == "fashion" && transformer ? 7 : null, Stem = task == "fashion" && transformer ? 0 : null,
            StemLayers = task == "fashion" && transformer ? 1 : null, Erase = task == "fashion" ? 0f : null,
            TestViews = task == "fashion" ? "shifts" : null,
            LabelSmoothing = task == "fashion" || task == "g2p" && transformer ? 0.1f : task == "g2p" ? 0f : null,
            LossAverage = task == "g2p" ? transformer ? "token" : "batch" : null,
            Pronunciations = task == "g2p" ? "all" : null, Batching = task == "g2p" ? "length" : null,
        };
        return task switch
        {
            // The main job: 8.5 minutes of a 4-layer GPT on the Brown corpus. β₂ = 0.95 as nanoGPT and GPT-3 train
            // language models: the second moment follows the gradient's scale faster, which steadies small batches.
            // Byte-level BPE with 2,048 ids: a token covers about 3 characters, so each step reads (and a context
            // holds) that much more text. At 600 steps of batch 32 it scored 2.20 bits/char on validation against 2.31
            // with 1,024 ids, 2.41 with 512 and 2.75 with characters (docs/main-job.md). The larger head costs little
            // here: on the AVX-512 machine the batch-32 run trained at 18.5k tokens/s, the character model's at 19.4k.
            // Batch 16: twice the steps for the same tokens. At 4.1M tokens (1 thread, fixed steps) it scored 2.053
            // bits/char against 2.085 with batch 32 (1,000 steps) and 2.064 with batch 8; lr 2e-3 and 4e-3 scored 2.073
            // and 2.058. A step of 16 rows costs no more per token on 2 threads, so the time limit buys the same tokens.
            "gpt" => common with
            {
                Steps = 4000, Minutes = 8.5, Batch = 16, LearningRate = 3e-3f, WarmupSteps = 200, WeightDecay = 0.1f,
                Beta2 = 0.95f, EvalInterval = 500, EvalSample = 512, Layers = 4, Heads = 4, Width = 128, Context = 128,
                Dropout = 0f, Positions = Nn.PositionalEncodingKind.Learned, Attention = Nn.AttentionPattern.Full,
                Tokenizer = "bpe", Vocab = 2048,
            },
            // Masked words pre-train the tagger's encoder, so they read its rotary positions: over 18 minutes (2 threads)
            // 33.6 % of the masked validation words recovered (loss 4.46) against 31.8 % (4.67) with learned positions,
            // and the tagger started from it scored 98.25 % test accuracy (91.15 % on unseen words) against 98.19 %
            // (91.01 %); from scratch, 98.23 % (91.28 %): on the tagger's own text, pre-training does not pay at 18 minutes.
            // Hugging Face's BertForMaskedLM and the ONNX export hold learned positions only: --positions learned.
            "mlm" => common with
            {
                Steps = 100_000, Minutes = 18, Batch = 32, LearningRate = 1e-3f, WarmupSteps = 300, WeightDecay = 0.01f,
                EvalInterval = 500, EvalSample = 0, Layers = 4, Heads = 4, Width = 128, Dropout = 0.1f,
                Positions = Nn.PositionalEncodingKind.Rotary,
            },
            // The tagger reads rotary positions: at 2,500 steps (1 thread) 97.84 % test accuracy against 96.55 % with
            // ALiBi and 95.61 % with learned positions; a word's tag depends on its neighbours' offsets, which rotary
            // q·k products see directly. Dropout 0.2 keeps it from overfitting the words it has seen over an 18-minute
            // run. Rare-word dropout (α = 0.25) instead of a uniform 0.1 lets <unk> learn the rare words unseen ones
            // resemble: at 3,000 steps 90.55 % on unseen test words against 89.68 % (both with the prefix features).
            "pos" => transformer
                ? common with
                {
                    Steps = 100_000, Minutes = 18, Batch = 32, LearningRate = 1e-3f, WarmupSteps = 300, WeightDecay = 0.01f,
                    EvalInterval = 500, EvalSample = 0, Layers = 4, Heads = 4, Width = 128, Dropout = 0.2f,
                    Positions = Nn.PositionalEncodingKind.Rotary, RareWordDropout = 0.25f,
                }
                : common with
                {
                    Steps = 100_000, Minutes = 18, Batch = 32, LearningRate = 2e-3f, WarmupSteps = 100, WeightDecay = 0.01f,
                    EvalInterval = 500, EvalSample = 0, Layers = 2, Width = 128, Dropout = 0.25f,
                },
            // Periodic passes score 2,000 of the 10,000 validation images (a standard error of about 0.7 points at 90 %).
            // The ViT validates and tests an average of its weights: at 30,000 steps (1 thread) 89.11 % test accuracy
            // against 88.74 % without it; 4×4 patches (--patch 4) cost 3.4 times as much a step and lost at equal time.
            // A 3×3 convolution of 16 channels before the 7×7 patches (--stem 16) keeps the 16 tokens and makes each
            // from edges instead of pixels: a step costs 1.3 times as much, and at 18 minutes (2 threads, the AVX2-only
            // machine) it scored 91.24 % test accuracy against 90.63 % without it. Both networks score the mean of 10
            // views of each image (mirrored or not, centred or moved a pixel four ways): on two 18-minute runs' ViT
            // checkpoints 92.24 and 92.15 % test accuracy against 91.71 and 91.54 % read once; the BiLSTM's, 91.54 / 91.34.
            "fashion" => transformer
                ? common with
                {
                    Steps = 100_000, Minutes = 18, Batch = 32, LearningRate = 1e-3f, WarmupSteps = 500, WeightDecay = 0.05f,
                    EvalInterval = 2000, EvalSample = 2000, Layers = 4, Heads = 4, Width = 128, Dropout = 0f, Ema = 0.9995f,
                    Stem = 16,
                }
                : common with
                {
                    Steps = 100_000, Minutes = 18, Batch = 64, LearningRate = 2e-3f, WarmupSteps = 200, WeightDecay = 0.01f,
                    EvalInterval = 1000, EvalSample = 2000, Layers = 2, Width = 128, Dropout = 0.1f,
                },
            // A 30-minute run sees the training words only a few times, so it is short of steps rather than of
            // regularisation: the Transformer's residual stream trains without dropout. With 0.1 (2 threads, the AVX2-only
            // machine) a step cost 14 % more and the sample's greedy word error at step 12,000 was 34.80 % against 29.87 %.
            // The LSTM's periodic passes decode 1,500 of the 6,150 validation words greedily. The Transformer validates
            // and tests an average of its weights: at 12,000 steps (1 thread) 29.84 % word error (beam 5) against
            // 30.69 % without it.
            // Late in its 30 minutes its validation loss rose (from step 23,000 at weight decay 0.01); at 0.1 it rose
            // less, and the run scored 25.83 % test word error (beam 5) against 26.44 % (2 threads, one run each).
            // Its loss weighs every target phoneme alike (LossAverage "token" above): a batch of short words no longer
            // counts as much as one of long words, and the 30-minute run scored 25.27 % against 25.97–26.00 %.
            // Dropout on its attention weights alone (AttentionDropout) keeps its validation loss falling to the end of
            // the 30 minutes, where without it the loss turned up after ~30,000 steps; so the last passes matter, and the
            // Transformer's decode all 6,150 validation words (2.6 s a pass) every 2,000 steps instead of a 1,500-word
            // sample every 1,000, whose standard error (1.1 points of word error) had picked a checkpoint 9,000 steps
            // before the end in one run (docs/tasks.md).
            // Its feed-forward layers are SwiGLU's three matrices 336 wide (about the parameters of ReLU's two at 512):
            // a step costs about the same, its validation loss ran below all nine ReLU runs' until about step 30,000, and
            // three 30-minute runs scored 24.16–25.00 % test word error (beam 5, mean 24.66 %) against ReLU's 24.55–25.68 %
            // (mean 25.05 %, nine runs).
            "g2p" => common with
            {
                Steps = 100_000, Minutes = 30, Batch = 64, LearningRate = transformer ? 1e-3f : 2e-3f, WarmupSteps = 200,
                WeightDecay = transformer ? 0.1f : 0.01f, EvalInterval = transformer ? 2000 : 1000,
                EvalSample = transformer ? 0 : 1500, Layers = transformer ? 3 : 2, Heads = transformer ? 4 : null,
                Width = transformer ? 128 : 256, Dropout = transformer ? 0f : 0.1f, Ema = transformer ? 0.999f : 0f,
                AttentionDropout = transformer ? 0.1f : null, Activation = transformer ? "swiglu" : null,
            },
            _ => throw UnknownTask(task),
        };
#pragma warning restore format
    }

    /// <summary>
    /// Refuses, by option name, what the options' task or network has no use for (its preset leaves such fields null, so
    /// only the command line sets them).
    /// </summary>
    public static TrainOptions Refuse(TrainOptions o)
    {
        var preset = For(o.Task, o.Model);
        void Check(bool set, bool used, string option, string why)
        {
            if (set && !used)
                throw new ArgumentException(
                    $"{option} is not used by --task {o.Task}{(o.Task == "gpt" ? "" : $" --model {o.Model}")}: {why}.");
        }
        Check(o.Context is not null, preset.Context is not null, "--context", "the context length is for --task gpt");
        Check(o.Patch is not null, preset.Patch is not null, "--patch", "the patch size is for --task fashion's ViT");
        Check(o.Stem is not null, preset.Stem is not null, "--stem", "the convolutional stem is for --task fashion's ViT");
        Check(o.StemLayers is not null, preset.StemLayers is not null, "--stem-layers",
            "the convolutional stem is for --task fashion's ViT");
        Check(o.Erase is not null, preset.Erase is not null, "--erase",
            "it erases rectangles of --task fashion's training images");
        Check(o.TestViews is not null, preset.TestViews is not null, "--test-views",
            "it averages views of --task fashion's images");
        Check(o.Positions is not null, preset.Positions is not null, "--positions", "a recurrent model reads its input in order");
        Check(o.Attention is not null, preset.Attention is not null, "--attention", "a recurrent model has no attention pattern");
        Check(o.Tokenizer is not null, preset.Tokenizer is not null, "--tokenizer",
            "the other tasks read words, letters or pixels");
        Check(o.Vocab is not null, preset.Vocab is not null, "--vocab", "the vocabulary size is for --task gpt --tokenizer bpe");
        Check(o.Heads is not null, preset.Heads is not null, "--heads", "the recurrent models have no attention heads");
        Check(o.WordDropout is not null, preset.WordDropout is not null, "--word-dropout",
            "it drops words of --task pos's training sentences");
        Check(o.RareWordDropout is not null, preset.RareWordDropout is not null, "--rare-word-dropout",
            "it drops rare words of --task pos's training sentences");
        Check(o.TrainFraction is not null, preset.TrainFraction is not null, "--train-fraction",
            "it trains --task pos on a share of its training documents");
        Check(o.LabelSmoothing is not null, preset.LabelSmoothing is not null, "--label-smoothing",
            "it softens the targets of --task g2p and fashion");
        Check(o.LossAverage is not null, preset.LossAverage is not null, "--loss-average",
            "it weighs the target tokens of --task g2p's batches");
        Check(o.Pronunciations is not null, preset.Pronunciations is not null, "--pronunciations",
            "it picks the training pronunciations of --task g2p");
        Check(o.Batching is not null, preset.Batching is not null, "--batching", "it cuts --task g2p's training batches");
        if (o.Batching == "mixed" && o.Model != "transformer")
            throw new ArgumentException($"--batching mixed is not for --task g2p --model {o.Model}: it pads a batch's " +
                                        "spellings, which a recurrent encoder would read as letters; use --batching length.");
        Check(o.Beam is not null, preset.Beam is not null, "--beam", "beam search decodes --task g2p's pronunciations");
        Check(o.LengthPenalty is not null, preset.LengthPenalty is not null, "--length-penalty",
            "it normalises --task g2p's beam search");
        Check(o.Ensemble is not null, preset.Ensemble is not null, "--ensemble",
            "it trains several --task g2p models that decode together");
        Check(o.SideBySide, preset.Ensemble is not null, "--side-by-side",
            "it trains the members of --task g2p's --ensemble at the same time");
        Check(o.NoAttention, o.Task == "g2p" && o.Model != "transformer", "--no-attention",
            "it removes the attention of g2p's recurrent encoder–decoders");
        Check(o.PostLn, o.Task == "g2p" && o.Model == "transformer", "--post-ln",
            "it moves the LayerNorms of --task g2p's Transformer");
        Check(o.AttentionDropout is not null, o.Task == "g2p" && o.Model == "transformer", "--attention-dropout",
            "it sets the attention weights' dropout of --task g2p's Transformer (--dropout sets the rest)");
        Check(o.DecoderLayers is not null, o.Task == "g2p" && o.Model == "transformer", "--decoder-layers",
            "it sets the decoder depth of --task g2p's Transformer (--layers sets the rest)");
        Check(o.FeedForwardWidth is not null, o.Task == "g2p" && o.Model == "transformer", "--ffn-width",
            "it sets the feed-forward width of --task g2p's Transformer");
        Check(o.Activation is not null, o.Task == "g2p" && o.Model == "transformer", "--activation",
            "it sets the feed-forward non-linearity of --task g2p's Transformer");
        if (o.Device == TrainDevice.Cuda && o.Task is not ("gpt" or "mlm"))
            throw new ArgumentException(
                $"--device cuda trains --task gpt and --task mlm; --task {o.Task} trains on the CPU (--device cpu).");
        if (o.Device == TrainDevice.Cuda && o.Ema > 0)
            throw new ArgumentException("--ema averages the CPU model's weights after every step; with --device cuda the " +
                                        "weights stay on the GPU between evaluations (train without --ema there).");
        if (o.Device == TrainDevice.Cuda && o.Task == "gpt" && o.DetectAnomaly)
            throw new ArgumentException("--detect-anomaly checks the operations of the autograd graph; --task gpt on " +
                                        "--device cuda trains the GPU GPT, which has none: a NaN or Inf is named by the " +
                                        "gradient it reaches.");
        return o;
    }

    static ArgumentException UnknownTask(string task) =>
        new($"--task '{task}' is unknown; available: {string.Join(", ", Tasks)}.");
}
