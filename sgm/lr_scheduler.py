"""Learning-rate multipliers for torch.optim.lr_scheduler.LambdaLR."""


class LambdaLinearScheduler:
    """Linear warm-up from f_start to f_max over warm_up_steps, then linear to f_min at cycle_length.

    Called with the step, returns the factor applied to the base learning rate.
    """

    def __init__(self, warm_up_steps: int, f_min: float = 1.0, f_max: float = 1.0, f_start: float = 0.0, cycle_length: int = 10**10):
        if warm_up_steps < 0 or cycle_length <= warm_up_steps:
            raise ValueError("need 0 <= warm_up_steps < cycle_length")
        self.warm_up_steps = warm_up_steps
        self.f_min = f_min
        self.f_max = f_max
        self.f_start = f_start
        self.cycle_length = cycle_length

    def __call__(self, step: int) -> float:
        if step < self.warm_up_steps:
            return self.f_start + (self.f_max - self.f_start) * step / self.warm_up_steps
        progress = min(1.0, (step - self.warm_up_steps) / (self.cycle_length - self.warm_up_steps))
        return self.f_max + (self.f_min - self.f_max) * progress
