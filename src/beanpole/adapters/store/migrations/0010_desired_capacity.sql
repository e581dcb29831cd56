-- Desired capacity (issue 7, part 4): how many instances the environment should run, apart
-- from aws:autoscaling:asg MinSize/MaxSize and always read clamped to them
-- (`beanpole.core.capacity.desired_count`). NULL: not decided yet (a create in progress
-- sets it), read as MinSize. The Python step fills existing rows with their MinSize, the
-- count they ran before.
ALTER TABLE environments ADD COLUMN desired_capacity INTEGER;
