"""Text-to-image MoLE (the paper's V&L half): an offline generated world, a small diffusion model and CLIP trained on
it, DreamBooth-style subject LoRAs, their composition by NLA, SVDiff and MoLE inside the UNet and text encoder, and
CLIP/presence scoring. The same code runs Stable Diffusion 2.1 from a local folder at the paper scale.

Modules: world (the generated image-caption world), components (tokenizer, text encoder, UNet, scheduler, CLIP,
presence classifier: build, train, load), sampling (the one denoising loop), subjects (DreamBooth LoRA training,
expert loading), gate_training (CLIP-guided gate training), metrics (alignment and presence), report (tables, grids).
"""
