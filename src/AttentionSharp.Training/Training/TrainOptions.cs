using System.Globalization;
using System.Text.Json.Nodes;
using AttentionSharp.Nn;

namespace AttentionSharp.Training;

/// <summary>
/// Everything a training run reads, for every task: what to train on, where to write, the model's shape, the optimizer,
/// the schedule and the checks. The command line binds its options onto a task's preset (<see cref="TaskPresets"/>) and
/// hands the result to <see cref="TrainingRun"/>; nothing flows back. A nullable field left null is one the task has no
/// use for (its preset does not set it); a task refuses such a field when it is set, naming the option.
/// </summary>
public sealed record TrainOptions
{
    /// <summary>The task: gpt (a causal language model on text), mlm, pos, fashion or g2p.</summary>
    public string Task { get; init; } = "gpt";

    /// <summary>The network: transformer, or a recurrent baseline (lstm, gru, rnn) where the task has one.</summary>
    public string Model { get; init; } = "transformer";

    /// <summary>A data file or directory replacing the task's default data set, or null.</summary>
    public string? Data { get; init; }

    /// <summary>The run directory (checkpoints, log.jsonl, loss.png); null: the resumed run's, else runs/TASK.</summary>
    public string? Out { get; init; }

    /// <summary>A run or checkpoint directory to continue exactly, or null.</summary>
    public string? Resume { get; init; }

    /// <summary>A checkpoint whose weights start the model (pos: an mlm checkpoint's encoder), or null.</summary>
    public string? Init { get; init; }

    /// <summary>Where fetched data is kept, or null for the default cache.</summary>
    public string? Cache { get; init; }

    /// <summary>Optimizer steps to take (the schedule's length).</summary>
    public int Steps { get; init; } = 2000;

    /// <summary>If set, stop after this many minutes of training even if steps remain; the schedule is fitted to it.</summary>
    public double? Minutes { get; init; }

    /// <summary>B: rows (sequences, sentences, images, words) per micro-batch on each rank.</summary>
    public int Batch { get; init; } = 32;

    /// <summary>Micro-batches whose gradients are summed before each step (effective batch = Batch × this × ranks).</summary>
    public int GradAccumulation { get; init; } = 1;

    /// <summary>Peak learning rate, reached after warmup.</summary>
    public float LearningRate { get; init; } = 3e-3f;

    /// <summary>Steps of linear warmup.</summary>
    public int WarmupSteps { get; init; } = 100;

    /// <summary>The rate the cosine decays to, as a fraction of the peak.</summary>
    public float MinLearningRateRatio { get; init; } = 0.1f;

    /// <summary>AdamW's decoupled weight decay, on matrices only.</summary>
    public float WeightDecay { get; init; } = 0.1f;

    /// <summary>AdamW's β₂ (the presets say why theirs differs from PyTorch's 0.999).</summary>
    public float Beta2 { get; init; } = 0.999f;

    /// <summary>
    /// The decay of an exponential moving average of the weights that validation, the best checkpoint and the closing
    /// figures use (<see cref="WeightAverage"/>); 0 keeps no average.
    /// </summary>
    public float Ema { get; init; }

    /// <summary>Global gradient-norm limit.</summary>
    public float GradClip { get; init; } = 1f;

    /// <summary>Steps between validation passes (0 = only at the end).</summary>
    public int EvalInterval { get; init; } = 250;

    /// <summary>
    /// Examples a periodic validation pass scores (windows, sentences, images or words), drawn once with a fixed seed
    /// from all of the validation split; 0 scores all of it every time. The final pass always scores all of it.
    /// </summary>
    public int EvalSample { get; init; } = 512;

    /// <summary>Seed of everything random in the run.</summary>
    public ulong Seed { get; init; } = 1337;

    /// <summary>What to do when a step's loss or a gradient is NaN or ±∞: stop (the default) or skip the step.</summary>
    public NonFiniteAction OnNonFinite { get; init; } = NonFiniteAction.Stop;

    /// <summary>Check every operation's output in the forward pass and name the first that is not finite (slower).</summary>
    public bool DetectAnomaly { get; init; }

    /// <summary>
    /// Where the steps compute: the CPU, or a CUDA GPU (--task gpt, one process). Not kept by a checkpoint: a run saved
    /// on one device resumes on either.
    /// </summary>
    public TrainDevice Device { get; init; } = TrainDevice.Cpu;

    /// <summary>L: Transformer blocks or recurrent layers.</summary>
    public int? Layers { get; init; }

    /// <summary>NH: attention heads (Transformers only).</summary>
    public int? Heads { get; init; }

    /// <summary>C: model width (d_model), or the recurrent models' hidden size.</summary>
    public int? Width { get; init; }

    /// <summary>
    /// G2P's Transformer: the feed-forward layers' hidden width, null for four times <see cref="Width"/>.
    /// </summary>
    public int? FeedForwardWidth { get; init; }

    /// <summary>
    /// G2P's Transformer: the feed-forward layers' non-linearity, "relu" (the paper's), "gelu" or "swiglu"; null for
    /// "relu". SwiGLU's three matrices take a hidden width of about 8/3 · <see cref="Width"/> by default, so the block
    /// keeps the parameters and multiply-adds of ReLU's two at four times the width.
    /// </summary>
    public string? Activation { get; init; }

    /// <summary>Dropout probability.</summary>
    public float? Dropout { get; init; }

    /// <summary>
    /// G2P's Transformer: dropout on the attention weights alone, null for <see cref="Dropout"/>'s (the rest of the
    /// network keeps <see cref="Dropout"/>).
    /// </summary>
    public float? AttentionDropout { get; init; }

    /// <summary>
    /// Late dropout: the fraction of the schedule's steps trained without dropout before <see cref="Dropout"/> switches
    /// on, in [0, 1) (0: from the first step). The model is in training mode from that step on and in evaluation mode
    /// (dropout off) before it; with a time limit the step moves with the schedule's fitted length.
    /// </summary>
    public float DropoutFrom { get; init; }

    /// <summary>
    /// ε of label smoothing in the training loss of the classification tasks (g2p and fashion): the target puts 1 − ε
    /// on the label and spreads ε over every class.
    /// </summary>
    public float? LabelSmoothing { get; init; }

    /// <summary>
    /// G2P: how a batch's training loss weighs its target tokens (<see cref="Tasks.Seq2SeqBatches"/>): "batch", the mean
    /// over the batch's tokens, so every batch weighs the same; "token", their sum over the number a batch holds on
    /// average, so every token weighs the same whichever batch it falls in.
    /// </summary>
    public string? LossAverage { get; init; }

    /// <summary>
    /// G2P: which pronunciations of a training word are training examples
    /// (<see cref="Tasks.PronunciationTask.PronunciationChoices"/>): "all", one example each, or "first", the
    /// dictionary's first alone, so that no spelling is taught two answers.
    /// Validation and test accept any of a word's pronunciations either way.
    /// </summary>
    public string? Pronunciations { get; init; }

    /// <summary>
    /// G2P: how training batches are cut (<see cref="Tasks.Seq2SeqBatches.Batchings"/>): "length", words of one spelling
    /// length, so that no source is padded; "mixed", words of every length drawn together, their spellings padded
    /// (a Transformer's encoder masks and skips the padding; a recurrent one cannot, so it takes "length" only).
    /// </summary>
    public string? Batching { get; init; }

    /// <summary>
    /// POS tagging: the share of training words read as &lt;unk&gt; (their spelling features kept), drawn afresh every
    /// step, so the tagger learns to tag words it has not seen from their spelling and context.
    /// </summary>
    public float? WordDropout { get; init; }

    /// <summary>
    /// POS tagging: α of rare-word dropout, which reads a training word seen n times as &lt;unk&gt; with probability
    /// α / (α + n) (Kiperwasser &amp; Goldberg 2016), so that &lt;unk&gt; learns the rare words unseen ones resemble; 0: off.
    /// Drawn together with <see cref="WordDropout"/>.
    /// </summary>
    public float? RareWordDropout { get; init; }

    /// <summary>
    /// POS tagging: the share of the training documents to train on, for learning curves: a fixed draw, each smaller share
    /// inside the larger ones; the vocabulary and the words counted as unseen are that share's. 1: all of them.
    /// </summary>
    public double? TrainFraction { get; init; }

    /// <summary>G2P: the beam width of the final test scores (1 is greedy decoding).</summary>
    public int? Beam { get; init; }

    /// <summary>
    /// G2P: train this many models one after another, each with its own seed and an equal share of the time limit,
    /// and decode with their mean distribution (<see cref="EnsembleRun"/>); 1 trains one model.
    /// </summary>
    public int? Ensemble { get; init; }

    /// <summary>
    /// G2P with <see cref="Ensemble"/> &gt; 1: train the members at the same time, each on an equal share of the
    /// threads (at least one) and for the whole time limit, instead of one after another; ignored for one model.
    /// </summary>
    public bool SideBySide { get; init; }

    /// <summary>
    /// G2P: α of the beam search's length normalisation, log p / ((5 + |Y|) / 6)^α (0: plain log-probability).
    /// </summary>
    public float? LengthPenalty { get; init; }

    /// <summary>T: context length in tokens (language models).</summary>
    public int? Context { get; init; }

    /// <summary>Fashion-MNIST's ViT: the side of a square patch in pixels, a divisor of the image's 28.</summary>
    public int? Patch { get; init; }

    /// <summary>
    /// Fashion-MNIST's ViT: the channels of a 3×3 convolution (stride 1, with a LayerNorm over its channels and GELU)
    /// that reads the image before it is cut into patches, so that each patch carries local edges and strokes rather
    /// than raw pixels (Xiao et al. 2021); 0: none, the patches read the pixels.
    /// </summary>
    public int? Stem { get; init; }

    /// <summary>Fashion-MNIST's ViT: how many such convolutions the stem stacks (each of <see cref="Stem"/> channels).</summary>
    public int? StemLayers { get; init; }

    /// <summary>
    /// The G2P Transformer's decoder layers when they differ from its encoder's (<see cref="Layers"/>): a deep encoder
    /// reads the letters in context once per word, a shallow decoder runs once per phoneme.
    /// </summary>
    public int? DecoderLayers { get; init; }

    /// <summary>
    /// Fashion-MNIST: the probability of random erasing, a rectangle of each training image filled with noise
    /// (<see cref="Data.ImageAugmentation.RandomErase"/>); 0: none.
    /// </summary>
    public float? Erase { get; init; }

    /// <summary>
    /// Fashion-MNIST: the views of each image the final validation pass, the test and `attn predict` average
    /// (<see cref="Data.TestViews"/>: none, mirror or shifts); the sample passes during training read each image once.
    /// </summary>
    public string? TestViews { get; init; }

    /// <summary>Positional encoding (language models).</summary>
    public PositionalEncodingKind? Positions { get; init; }

    /// <summary>The attention pattern (language models).</summary>
    public AttentionPattern? Attention { get; init; }

    /// <summary>Tokenizer: char, bpe, or a tiktoken encoding (language models).</summary>
    public string? Tokenizer { get; init; }

    /// <summary>Vocabulary size for the bpe tokenizer.</summary>
    public int? Vocab { get; init; }

    /// <summary>Sequence-to-sequence recurrent models without attention (the fixed-size bottleneck).</summary>
    public bool NoAttention { get; init; }

    /// <summary>
    /// The G2P Transformer with post-LN blocks (x = LayerNorm(x + Sublayer(x)), as in the paper) instead of the preset's
    /// pre-LN; kept in the checkpoint's network config.
    /// </summary>
    public bool PostLn { get; init; }

    /// <summary>
    /// These options with the model's shape left to the checkpoint a run starts from (--resume or --init): layers, heads,
    /// width, context, positions, attention, tokenizer, vocabulary and dropout become null, so only what is given
    /// afterwards overrides the checkpoint.
    /// </summary>
    public TrainOptions WithCheckpointShape() => this with
    {
        Layers = null,
        DecoderLayers = null,
        FeedForwardWidth = null,
        Activation = null,
        Heads = null,
        Width = null,
        Context = null,
        Positions = null,
        Attention = null,
        Tokenizer = null,
        Vocab = null,
        Dropout = null,
    };

    /// <summary>Checks every field's range; returns this. Errors name the command-line option.</summary>
    public TrainOptions Validate()
    {
        if (Steps <= 0) throw new ArgumentException($"--steps must be positive; got {Steps}.");
        if (Minutes is { } m && !(m > 0)) throw new ArgumentException($"--minutes must be positive; got {m}.");
        if (Batch <= 0) throw new ArgumentException($"--batch must be positive; got {Batch}.");
        if (GradAccumulation <= 0) throw new ArgumentException($"--grad-accum must be positive; got {GradAccumulation}.");
        if (!(LearningRate > 0) || float.IsInfinity(LearningRate))
            throw new ArgumentException($"--lr must be a positive number; got {LearningRate}.");
        if (WarmupSteps < 0) throw new ArgumentException($"--warmup cannot be negative; got {WarmupSteps}.");
        if (!(MinLearningRateRatio >= 0 && MinLearningRateRatio <= 1))
            throw new ArgumentException($"--min-lr-ratio must be in [0, 1]; got {MinLearningRateRatio}.");
        if (!(WeightDecay >= 0)) throw new ArgumentException($"--weight-decay cannot be negative; got {WeightDecay}.");
        if (!(Beta2 >= 0 && Beta2 < 1)) throw new ArgumentException($"AdamW's beta2 must be in [0, 1); got {Beta2}.");
        if (!(Ema >= 0 && Ema < 1)) throw new ArgumentException($"--ema must be in [0, 1) (0: no average); got {Ema}.");
        if (!(GradClip > 0)) throw new ArgumentException($"The gradient clip must be positive; got {GradClip}.");
        if (EvalInterval < 0) throw new ArgumentException($"--eval-interval cannot be negative; got {EvalInterval}.");
        if (EvalSample < 0) throw new ArgumentException($"--eval-sample cannot be negative; got {EvalSample}.");
        if (Layers is <= 0) throw new ArgumentException($"--layers must be positive; got {Layers}.");
        if (Heads is <= 0) throw new ArgumentException($"--heads must be positive; got {Heads}.");
        if (Width is <= 0) throw new ArgumentException($"--width must be positive; got {Width}.");
        if (Dropout is { } p && !(p >= 0 && p < 1)) throw new ArgumentException($"--dropout must be in [0, 1); got {p}.");
        if (AttentionDropout is { } ap && !(ap >= 0 && ap < 1))
            throw new ArgumentException($"--attention-dropout must be in [0, 1); got {ap}.");
        if (!(DropoutFrom >= 0 && DropoutFrom < 1))
            throw new ArgumentException($"--dropout-from must be in [0, 1); got {DropoutFrom}.");
        if (DropoutFrom > 0 && Dropout is 0 && AttentionDropout is null or 0)
            throw new ArgumentException($"--dropout-from {DropoutFrom:G3} switches dropout on part way through the run, " +
                                        "but the dropout is 0: give --dropout P as well.");
        if (Ensemble is <= 0 or > EnsembleRun.MaxMembers)
            throw new ArgumentException($"--ensemble must be between 1 and {EnsembleRun.MaxMembers}; got {Ensemble}.");
        if (LabelSmoothing is { } ls && !(ls >= 0 && ls < 1))
            throw new ArgumentException($"--label-smoothing must be in [0, 1); got {ls}.");
        if (LossAverage is { } average && !Tasks.Seq2SeqBatches.Averages.Contains(average))
            throw new ArgumentException(
                $"--loss-average must be one of {string.Join(", ", Tasks.Seq2SeqBatches.Averages)}; got '{average}'.");
        if (Batching is { } batching && !Tasks.Seq2SeqBatches.Batchings.Contains(batching))
            throw new ArgumentException(
                $"--batching must be one of {string.Join(", ", Tasks.Seq2SeqBatches.Batchings)}; got '{batching}'.");
        if (Pronunciations is { } which && !Tasks.PronunciationTask.PronunciationChoices.Contains(which))
            throw new ArgumentException($"--pronunciations must be one of " +
                $"{string.Join(", ", Tasks.PronunciationTask.PronunciationChoices)}; got '{which}'.");
        if (WordDropout is { } w && !(w >= 0 && w < 1))
            throw new ArgumentException($"--word-dropout must be in [0, 1); got {w}.");
        if (RareWordDropout is { } a && !(a >= 0 && float.IsFinite(a)))
            throw new ArgumentException($"--rare-word-dropout must be a finite α ≥ 0; got {a}.");
        if (TrainFraction is { } f && !(f > 0 && f <= 1))
            throw new ArgumentException($"--train-fraction must be in (0, 1]; got {f}.");
        Tasks.PronunciationTask.ValidateDecoding(Beam, LengthPenalty);
        if (Context is <= 0) throw new ArgumentException($"--context must be positive; got {Context}.");
        if (Patch is <= 0) throw new ArgumentException($"--patch must be positive; got {Patch}.");
        if (Stem is < 0) throw new ArgumentException($"--stem must be 0 (none) or a positive number of channels; got {Stem}.");
        if (StemLayers is <= 0) throw new ArgumentException($"--stem-layers must be positive; got {StemLayers}.");
        if (DecoderLayers is <= 0) throw new ArgumentException($"--decoder-layers must be positive; got {DecoderLayers}.");
        if (FeedForwardWidth is <= 0) throw new ArgumentException($"--ffn-width must be positive; got {FeedForwardWidth}.");
        if (Activation is not (null or "relu" or "gelu" or "swiglu"))
            throw new ArgumentException($"--activation must be relu, gelu or swiglu; got '{Activation}'.");
        if (Erase is { } e && !(e >= 0 && e <= 1)) throw new ArgumentException($"--erase must be in [0, 1]; got {e}.");
        if (TestViews is { } views && !AttentionSharp.Data.TestViews.Names.Contains(views))
            throw new ArgumentException(
                $"--test-views must be one of {string.Join(", ", AttentionSharp.Data.TestViews.Names)}; got '{views}'.");
        if (Vocab is <= 0) throw new ArgumentException($"--vocab must be positive; got {Vocab}.");
        return this;
    }

    /// <summary>
    /// What a checkpoint keeps of the options, so that <c>--resume DIR</c> alone continues the run as it was started: the
    /// data (as a full path), the schedule, batch and optimizer settings, the checks. The model's shape is in the
    /// checkpoint's config.json instead; where to write and what to resume are the resuming command's own.
    /// </summary>
    public JsonObject ToJson() => new()
    {
        ["task"] = Task, ["model"] = Model, ["data"] = Data is null ? null : System.IO.Path.GetFullPath(Data), ["cache"] = Cache,
        ["steps"] = Steps, ["minutes"] = Minutes, ["batch"] = Batch, ["grad_accumulation"] = GradAccumulation,
        ["learning_rate"] = LearningRate, ["warmup_steps"] = WarmupSteps, ["min_lr_ratio"] = MinLearningRateRatio,
        ["weight_decay"] = WeightDecay, ["ema"] = Ema,
        ["beta2"] = Beta2, ["grad_clip"] = GradClip, ["eval_interval"] = EvalInterval,
        ["eval_sample"] = EvalSample, ["seed"] = Seed.ToString(CultureInfo.InvariantCulture),
        ["on_nonfinite"] = OnNonFinite.ToString().ToLowerInvariant(), ["dropout"] = Dropout, ["dropout_from"] = DropoutFrom,
        ["attention_dropout"] = AttentionDropout,
        ["no_attention"] = NoAttention,
        ["post_ln"] = PostLn, ["label_smoothing"] = LabelSmoothing, ["loss_average"] = LossAverage,
        ["pronunciations"] = Pronunciations, ["batching"] = Batching,
        ["word_dropout"] = WordDropout, ["rare_word_dropout"] = RareWordDropout, ["beam"] = Beam,
        ["length_penalty"] = LengthPenalty, ["ensemble"] = Ensemble, ["side_by_side"] = SideBySide,
        ["train_fraction"] = TrainFraction, ["erase"] = Erase, ["test_views"] = TestViews,
    };

    /// <summary>
    /// The options a checkpoint kept (<see cref="ToJson"/>) over <paramref name="defaults"/>: a field it lacks keeps the
    /// default's.
    /// </summary>
    public static TrainOptions FromJson(JsonObject json, TrainOptions defaults)
    {
        T Get<T>(string name, T fallback)
        {
            if (!json.TryGetPropertyValue(name, out var node)) return fallback;
            if (node is null) return default!;   // kept as null: not set in the run (e.g. no time limit)
            if (node is not JsonValue v) throw new IO.CheckpointException($"The trainer state's options.{name} is not a value.");
            return v.TryGetValue<T>(out var value) ? value
                : throw new IO.CheckpointException($"The trainer state's options.{name} is not a {typeof(T).Name}.");
        }
        string? seed = Get<string?>("seed", null);
        return defaults with
        {
            Task = Get("task", defaults.Task),
            Model = Get("model", defaults.Model),
            Data = Get("data", defaults.Data),
            Cache = Get("cache", defaults.Cache),
            Steps = Get("steps", defaults.Steps),
            Minutes = Get("minutes", defaults.Minutes),
            Batch = Get("batch", defaults.Batch),
            GradAccumulation = Get("grad_accumulation", defaults.GradAccumulation),
            LearningRate = Get("learning_rate", defaults.LearningRate),
            WarmupSteps = Get("warmup_steps", defaults.WarmupSteps),
            MinLearningRateRatio = Get("min_lr_ratio", defaults.MinLearningRateRatio),
            WeightDecay = Get("weight_decay", defaults.WeightDecay),
            Ema = Get("ema", defaults.Ema),
            Beta2 = Get("beta2", defaults.Beta2),
            GradClip = Get("grad_clip", defaults.GradClip),
            EvalInterval = Get("eval_interval", defaults.EvalInterval),
            EvalSample = Get("eval_sample", defaults.EvalSample),
            Seed = seed is null ? defaults.Seed : ulong.Parse(seed, CultureInfo.InvariantCulture),
            OnNonFinite = Get<string?>("on_nonfinite", null) is { } action
                ? Enum.Parse<Training.NonFiniteAction>(action, ignoreCase: true) : defaults.OnNonFinite,
            Dropout = Get("dropout", defaults.Dropout),
            // a run saved before the option existed dropped its attention weights at --dropout's rate
            AttentionDropout = Get<float?>("attention_dropout", null),
            DropoutFrom = Get("dropout_from", 0f),  // a run saved before the option existed had dropout from the start
            // a run saved before the option existed smoothed as its task's preset does
            LabelSmoothing = Get("label_smoothing", defaults.LabelSmoothing),
            // a run saved before the option existed took each batch's mean
            LossAverage = Get("loss_average", defaults.LossAverage is null ? null : "batch"),
            // a run saved before the option existed trained on every pronunciation
            Pronunciations = Get("pronunciations", defaults.Pronunciations is null ? null : "all"),
            // a run saved before the option existed cut its batches from words of one length
            Batching = Get("batching", defaults.Batching is null ? null : "length"),
            NoAttention = Get("no_attention", defaults.NoAttention),
            PostLn = Get("post_ln", defaults.PostLn),
            WordDropout = Get("word_dropout", defaults.WordDropout),
            // a run saved before rare-word dropout existed trained without it
            RareWordDropout = Get("rare_word_dropout", defaults.RareWordDropout is null ? null : (float?)0f),
            Beam = Get("beam", defaults.Beam),
            LengthPenalty = Get("length_penalty", defaults.LengthPenalty),
            // a run saved before ensembles existed trained one model
            Ensemble = Get("ensemble", defaults.Ensemble is null ? null : (int?)1),
            SideBySide = Get("side_by_side", false),  // a run saved before the option existed trained one member at a time
            TrainFraction = Get("train_fraction", defaults.TrainFraction),
            // a run saved before random erasing existed trained without it
            Erase = Get("erase", defaults.Erase is null ? null : (float?)0f),
            // a run saved before test views existed evaluated each image once
            TestViews = Get("test_views", defaults.TestViews is null ? null : "none"),
        };
    }

    /// <summary>The run directory: --out, else the resumed run's directory, else runs/TASK.</summary>
    public string RunDirectory => Out ?? (Resume is not null ? RunOf(Resume) : Path.Combine("runs", Task));

    /// <summary>A checkpoint directory's run (its parent, for DIR/checkpoint and DIR/best), or the directory itself.</summary>
    static string RunOf(string dir)
    {
        var full = Path.TrimEndingDirectorySeparator(dir);
        var name = Path.GetFileName(full);
        bool isCheckpoint = name is IO.Checkpoint.LatestSubdirectory or IO.Checkpoint.BestSubdirectory
                            && File.Exists(Path.Combine(full, IO.Checkpoint.ConfigFile));
        return isCheckpoint ? Path.GetDirectoryName(full) is { Length: > 0 } parent ? parent : "." : dir;
    }
}
